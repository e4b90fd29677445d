import CEL
import Foundation
import Testing
@testable import Switchboard

/// `schedule` triggers: ticks of `every:` and cron, one run per tick, one catch-up run for ticks
/// missed while down, one run per tick however many instances look.
@Suite("Schedules", .timeLimit(.minutes(2)))
struct ScheduleTests {
    static let utc = TimeZone(identifier: "UTC")!

    static func date(_ text: String) -> Date { Date(rfc3339: text)! }

    @Test("every: ticks are multiples of the period since the epoch; a gap owes its last tick only")
    func every() {
        let schedule = Schedule.every(.seconds(600))
        #expect(schedule.next(after: Self.date("2026-12-04T10:03:00Z")) == Self.date("2026-12-04T10:10:00Z"))
        #expect(schedule.next(after: Self.date("2026-12-04T10:10:00Z")) == Self.date("2026-12-04T10:20:00Z"))
        #expect(schedule.lastTick(after: Self.date("2026-12-04T10:10:00Z"), through: Self.date("2026-12-04T11:05:00Z"))
            == Self.date("2026-12-04T11:00:00Z"))
        #expect(schedule.lastTick(after: Self.date("2026-12-04T10:10:00Z"), through: Self.date("2026-12-04T10:19:59Z")) == nil)
    }

    @Test("cron: fields, ranges, steps, names, both day fields, and a time zone with daylight saving")
    func cron() throws {
        let mondays = try CronSchedule("0 9 * * MON", timeZone: TimeZone(identifier: "America/New_York")!)
        // 2026-12-04 is a Friday; the next Monday 09:00 in New York (EST, UTC-5) is 14:00 UTC.
        #expect(mondays.next(after: Self.date("2026-12-04T12:00:00Z")) == Self.date("2026-12-07T14:00:00Z"))
        // In July New York is on EDT (UTC-4).
        #expect(mondays.next(after: Self.date("2026-07-01T00:00:00Z")) == Self.date("2026-07-06T13:00:00Z"))
        let quarter = try CronSchedule("*/15 8-17 * * *", timeZone: Self.utc)
        #expect(quarter.next(after: Self.date("2026-12-04T10:07:30Z")) == Self.date("2026-12-04T10:15:00Z"))
        #expect(quarter.next(after: Self.date("2026-12-04T17:50:00Z")) == Self.date("2026-12-05T08:00:00Z"))
        // Day 1 of the month or a Sunday (7 is Sunday too): either fires.
        let either = try CronSchedule("30 6 1 * 7", timeZone: Self.utc)
        #expect(either.next(after: Self.date("2026-12-04T00:00:00Z")) == Self.date("2026-12-06T06:30:00Z"))
        #expect(either.next(after: Self.date("2026-12-27T07:00:00Z")) == Self.date("2027-01-01T06:30:00Z"))
        let yearly = try CronSchedule("0 0 29 FEB *", timeZone: Self.utc)
        #expect(yearly.next(after: Self.date("2026-03-01T00:00:00Z")) == Self.date("2028-02-29T00:00:00Z"))

        for (bad, says) in [("* * * *", "five fields"), ("61 * * * *", "minute '61'"), ("* * * * FUNDAY", "day of week"),
                            ("5-1 * * * *", "backwards"), ("*/0 * * * *", "step")] {
            #expect(throws: CronSchedule.Invalid.self, "\(bad)") { try CronSchedule(bad, timeZone: Self.utc) }
            do { _ = try CronSchedule(bad, timeZone: Self.utc) } catch { #expect(error.description.contains(says), "\(bad): \(error)") }
        }
    }

    static let workflow = """
        id: heartbeat
        trigger:
          schedule: { every: 2s }
        steps:
          - id: note
            output: { at: "= input.scheduled_at" }
        """

    @Test("a run per tick over 10 s; down for 10 s, one catch-up run; two instances looking start one run per tick")
    func runsPerTick() async throws {
        let directory = try TemporaryDirectory()
        try directory.write("workflows/heartbeat.yaml", Self.workflow)
        let start = Date(timeIntervalSince1970: 1_800_000_000)
        let clock = ManualClock(start)
        let gateway = try await TestGateway(configurationDirectory: directory.path, clock: clock)
        // The runners are called by hand at the clock's times; no service runs, so the gateway's
        // HTTP client (which its services would shut down) is shut down here.
        do {
            try await Self.ticks(gateway, clock: clock, start: start)
        } catch {
            try await gateway.gateway.httpClient.shutdown()
            throw error
        }
        try await gateway.gateway.httpClient.shutdown()
    }

    static func ticks(_ gateway: TestGateway, clock: ManualClock, start: Date) async throws {
        let runner = ScheduleRunner(gateway: gateway.gateway, startedAt: start)
        var started: [RunReference] = []
        for second in 0 ..< 10 {
            clock.advance(by: second == 0 ? 0.5 : 1)
            started += try await runner.check(at: clock.now())
        }
        #expect(started.count == 4, "ticks at +2, +4, +6, +8 s: \(started.count)")
        clock.advance(by: 1)  // +10.5
        started += try await runner.check(at: clock.now())
        #expect(started.count == 5)

        // Nobody looks for 10 s: one run, for the last tick missed.
        clock.advance(by: 10)  // +20.5
        let caughtUp = try await runner.check(at: clock.now())
        #expect(caughtUp.count == 1)
        let snapshot = try #require(try await gateway.store.loadRun(caughtUp[0].id))
        #expect(snapshot.run.trigger.scheduledAt == start.addingTimeInterval(20))
        #expect(snapshot.run.output == ["at": .string(start.addingTimeInterval(20).rfc3339)])

        // A restart after a stop: the new runner finds the last tick in the store.
        clock.advance(by: 9)  // +29.5
        let restarted = ScheduleRunner(gateway: gateway.gateway, startedAt: clock.now())
        #expect(try await restarted.check(at: clock.now()).count == 1, "one catch-up run for +28")

        // Two instances looking at the same tick start one run.
        clock.advance(by: 2)  // +31.5: the tick at +30
        let other = ScheduleRunner(gateway: gateway.gateway, startedAt: start)
        let first = try await restarted.check(at: clock.now()), second = try await other.check(at: clock.now())
        #expect(first.count + second.count == 1)
        // However they race, the tick's event id is unique: a second start is a duplicate.
        let workflow = try #require(gateway.gateway.configuration.workflow("heartbeat"))
        #expect(try await gateway.gateway.startScheduled(workflow, tick: start.addingTimeInterval(30)).duplicate)
        let runs = try await gateway.store.listRuns(RunQuery(workflow: "heartbeat", limit: 100))
        #expect(runs.count == 8)
        #expect(Set(runs.compactMap(\.trigger.scheduledAt)).count == 8, "one run per tick")
    }

    @Test("the shipped weekly-review-digest ticks on Mondays at 09:00 in Berlin; its dry run reminds and records the tick")
    func weeklyDigest() throws {
        let (configuration, _) = try Configuration.loadValid(directory: Repository.root.path)
        let digest = try #require(configuration.workflow("weekly-review-digest"))
        guard case let .schedule(schedule) = digest.trigger else { Issue.record("not a schedule"); return }
        // Friday 2026-12-04 → Monday 2026-12-07, 09:00 CET = 08:00 UTC.
        #expect(schedule.next(after: Self.date("2026-12-04T12:00:00Z")) == Self.date("2026-12-07T08:00:00Z"))
        let tick = Self.date("2026-12-07T08:00:00Z")
        let result = try DryRun.execute(digest, event: nil, input: nil, lists: ListIndexSnapshot(),
                                        connectors: configuration.connectorInstances, now: tick)
        #expect(result.run.status == .completed)
        #expect(result.run.output == ["reminded_at": .string(tick.rfc3339)])
        #expect(result.trace.contains("remind (connector) would send"), "\(result.trace)")
    }

    @Test("a schedule without a period, with a bad cron or an unknown time zone, or with trigger.if, is a configuration error")
    func validation() throws {
        func problems(_ trigger: String) throws -> [String] {
            let directory = try TemporaryDirectory()
            try directory.write("workflows/w.yaml", "id: w\ntrigger:\n\(trigger)\nsteps: [ { id: a, action: approve } ]\n")
            return Configuration.load(directory: directory.path, environment: EnvironmentInterpolator(environment: [:])).1
                .map { "\($0.line):\($0.column): \($0.message)" }
        }
        #expect(try problems("  schedule: { every: 0s }").first?.contains("at least 1s") == true)
        #expect(try problems("  schedule: { cron: '0 25 * * *' }").first?.contains("hour '25'") == true)
        #expect(try problems("  schedule: { cron: '0 9 * * *', timezone: Mars/Olympus }").first?.contains("unknown time zone") == true)
        #expect(try problems("  schedule: { every: 1m }\n  if: data.x == 1").first?.contains("a schedule has none") == true)
        #expect(try problems("  schedule: { cron: '0 9 * * 1-5', timezone: Europe/Berlin }").isEmpty)
    }
}
