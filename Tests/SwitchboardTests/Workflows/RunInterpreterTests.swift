import CEL
import Foundation
import Testing
@testable import Switchboard

/// The run state machine, driven directly with a hand-moved clock.
@Suite("Run interpreter")
struct RunInterpreterTests {
    static func workflow(_ yaml: String) throws -> Workflow {
        let directory = try TemporaryDirectory()
        try directory.write("workflows/w.yaml", yaml)
        let (configuration, problems) = Configuration.load(directory: directory.path)
        #expect(problems.isEmpty, "\(problems)")
        return try #require(configuration.workflows.first)
    }

    /// Advances a run as the engine does, merging each checkpoint into the snapshot.
    struct Driver {
        let workflow: Workflow
        var snapshot: RunSnapshot
        var lists = ListIndexSnapshot()

        init(_ workflow: Workflow, data: JSON = [:], input: JSON? = nil, at start: Date) {
            self.workflow = workflow
            snapshot = RunSnapshot(run: RunRecord(id: .generate(), workflow: workflow.id, trigger: RunTrigger(),
                                                  event: ["data": data], input: input, createdAt: start), steps: [])
        }

        @discardableResult
        mutating func advance(at now: Date) -> RunCheckpoint {
            var interpreter = RunInterpreter(workflow: workflow, snapshot: snapshot, now: now, lists: lists)
            let checkpoint = interpreter.advance()
            var byID = Dictionary(uniqueKeysWithValues: snapshot.steps.map { ($0.id, $0) })
            for step in checkpoint.steps { byID[step.id] = step }
            snapshot = RunSnapshot(run: checkpoint.run, steps: byID.values.sorted { $0.sequence < $1.sequence })
            return checkpoint
        }

        func step(_ id: String) -> StepRecord? { snapshot.steps.first { $0.id == id } }
    }

    let start = Date(timeIntervalSince1970: 1_800_000_000)

    @Test("if/else takes the branch its condition selects")
    func ifElse() throws {
        let workflow = try Self.workflow("""
            id: w
            trigger: { event: e }
            steps:
              - id: big
                if: data.amount > 100.0
                then: [ { id: review, action: mark_for_review } ]
                else: [ { id: ok, action: approve } ]
            """)
        var high = Driver(workflow, data: ["amount": 500], at: start)
        high.advance(at: start)
        #expect(high.snapshot.run.decision == .needsReview)
        #expect(high.step("ok") == nil)
        var low = Driver(workflow, data: ["amount": 5], at: start)
        low.advance(at: start)
        #expect(low.snapshot.run.decision == .approved)
        #expect(low.step("review") == nil)
        #expect(low.step("ok")?.parent == "big")
    }

    @Test("parallel runs every branch; the last decision wins; a failed branch fails the step")
    func parallel() throws {
        let workflow = try Self.workflow("""
            id: w
            trigger: { event: e }
            steps:
              - id: both
                parallel:
                  - id: first
                    action: tag
                    with: { tag: one }
                  - id: second
                    if: data.boom == 1.0
                    then: [ { id: inner, action: approve } ]
                  - id: third
                    action: tag
                    with: { tag: three }
              - id: after
                action: decline
            """)
        var ok = Driver(workflow, data: ["boom": 1], at: start)
        ok.advance(at: start)
        #expect(ok.snapshot.run.status == .completed)
        #expect(ok.snapshot.run.tags == ["one", "three"])
        #expect(ok.snapshot.run.decision == .declined)

        var failing = Driver(workflow, data: [:], at: start)
        failing.advance(at: start)
        #expect(failing.snapshot.run.status == .failed)
        #expect(failing.step("both")?.error?.errorClass == "branch_failed")
        #expect(failing.step("both")?.error?.message == "parallel branch second failed")
        #expect(failing.step("third")?.status == .completed, "the other branches still ran")
        #expect(failing.step("after") == nil)
    }

    @Test("on_error: continue goes on; a list of steps runs in place of the failed step")
    func onError() throws {
        let workflow = try Self.workflow("""
            id: w
            trigger: { event: e }
            steps:
              - id: shaky
                if: data.missing.value == 1.0
                then: [ { id: a, action: approve } ]
                on_error: continue
              - id: handled
                if: 1 / 0 == 1
                then: [ { id: b, action: approve } ]
                on_error:
                  - id: fallback
                    action: mark_for_review
              - id: last
                action: tag
                with: { tag: done }
            """)
        var driver = Driver(workflow, at: start)
        driver.advance(at: start)
        #expect(driver.snapshot.run.status == .completed)
        #expect(driver.step("shaky")?.status == .failed)
        #expect(driver.step("shaky")?.error?.errorClass == "expression")
        #expect(driver.step("shaky")?.error?.expression == "data.missing.value == 1.0")
        #expect(driver.step("shaky")?.error?.column == 6)
        #expect(driver.step("handled")?.error?.message == "division by zero")
        #expect(driver.step("fallback")?.parent == "handled")
        #expect(driver.snapshot.run.decision == .needsReview)
        #expect(driver.snapshot.run.tags == ["done"])
    }

    @Test("a CEL error fails the run with the expression, its position and the message")
    func expressionFailure() throws {
        let workflow = try Self.workflow("""
            id: w
            trigger: { event: e }
            steps:
              - id: check
                if: data.score > 'high'
                then: [ { id: a, action: approve } ]
            """)
        var driver = Driver(workflow, data: ["score": 1], at: start)
        driver.advance(at: start)
        #expect(driver.snapshot.run.status == .failed)
        let error = try #require(driver.snapshot.run.error)
        #expect(error.errorClass == "expression")
        #expect(error.expression == "data.score > 'high'")
        #expect(error.column == 12)
        #expect(error.message.contains("no matching overload for '_>_'"))
    }

    @Test("a wait for a duration suspends until its time, by the injected clock")
    func waitDuration() throws {
        let workflow = try Self.workflow("""
            id: w
            trigger: { event: e }
            steps:
              - id: pause
                wait: 10m
              - id: done
                action: approve
            """)
        var driver = Driver(workflow, at: start)
        driver.advance(at: start)
        #expect(driver.snapshot.run.status == .waiting)
        #expect(driver.snapshot.run.wakeAt == start.addingTimeInterval(600))
        driver.advance(at: start.addingTimeInterval(599))
        #expect(driver.snapshot.run.status == .waiting)
        driver.advance(at: start.addingTimeInterval(600))
        #expect(driver.snapshot.run.status == .completed)
        #expect(driver.snapshot.run.decision == .approved)
    }

    @Test("a review that does not come in time fails with the error class timeout")
    func reviewTimeout() throws {
        let workflow = try Self.workflow("""
            id: w
            trigger: { event: e }
            steps:
              - id: review
                wait: review
                timeout: 1h
            """)
        var driver = Driver(workflow, at: start)
        driver.advance(at: start)
        #expect(driver.snapshot.run.wakeAt == start.addingTimeInterval(3600))
        driver.advance(at: start.addingTimeInterval(3600))
        #expect(driver.snapshot.run.status == .failed)
        #expect(driver.snapshot.run.error?.errorClass == "timeout")
    }

    @Test("resuming from a checkpoint never repeats a finished step or re-evaluates a condition")
    func resume() throws {
        let workflow = try Self.workflow("""
            id: w
            trigger: { event: e }
            steps:
              - id: early
                if: now < timestamp('2030-01-01T00:00:00Z')
                then:
                  - id: tagged
                    action: tag
                    with: { tag: "first-{{run.id}}" }
                  - id: pause
                    wait: 1s
                  - id: approve
                    action: approve
            """)
        var driver = Driver(workflow, at: start)
        let first = driver.advance(at: start)
        #expect(Set(first.steps.map(\.id)) == ["early", "tagged", "pause"])
        let tagged = try #require(driver.step("tagged"))
        // Much later, past the date in the condition: the recorded result still holds.
        let later = Date(timeIntervalSince1970: 2_000_000_000)
        let second = driver.advance(at: later)
        #expect(!second.steps.contains { $0.id == "tagged" })
        #expect(driver.step("tagged") == tagged)
        #expect(driver.snapshot.run.decision == .approved)
        #expect(driver.snapshot.steps.map(\.sequence) == [1, 2, 3, 4])
        // Advancing a finished run changes nothing.
        #expect(driver.advance(at: later).steps.isEmpty)
    }

    @Test("age() counts whole years at the run's start, in UTC")
    func age() throws {
        let workflow = try Self.workflow("""
            id: w
            trigger: { event: e }
            steps:
              - id: adult
                if: age(data.birthdate) >= 18
                then: [ { id: ok, action: approve } ]
                else: [ { id: no, action: decline } ]
            """)
        // 2027-01-15T00:30:00Z: an 18th birthday that day counts; the next day's does not.
        let runStart = Date(timeIntervalSince1970: 1_799_973_000)
        for (birthdate, decision) in [("2009-01-15", Decision.approved), ("2009-01-16", .declined), ("2008-12-31", .approved)] {
            var driver = Driver(workflow, data: ["birthdate": .string(birthdate)], at: runStart)
            driver.advance(at: runStart.addingTimeInterval(86_400 * 400))
            #expect(driver.snapshot.run.decision == decision, "\(birthdate)")
        }
    }
}

extension RunInterpreterTests {
    @Test("a bare root name passes the value on as CEL would give it, without converting it")
    func rootValues() throws {
        let event: JSON = ["id": "e1", "data": ["amount": 12.5, "count": 3, "tags": ["a", "b"], "nested": ["ok": true, "none": .null]]]
        let run = RunRecord(id: .generate(), workflow: "w", trigger: RunTrigger(), event: event, input: ["x": [1, 2]],
                            createdAt: start)
        let context = RunContext(run: run, steps: [], now: start, lists: ListIndexSnapshot())
        func expression(_ source: String) throws -> ValueTemplate {
            .expression(Expression(source: source, program: try ExpressionEnvironment.shared.compile(source),
                                   location: SourceLocation(file: "t", line: 1, column: 1)))
        }
        for (bare, throughCEL) in [("event", "event.id == '' ? {} : event"), ("data", "event.data"), ("input", "[input][0]")] {
            #expect(context.rootValue(bare) != nil)
            #expect(context.rootValue(throughCEL) == nil)
            #expect(try expression(bare).evaluate(in: context) == expression(throughCEL).evaluate(in: context), "\(bare)")
        }
        let noData = RunContext(run: RunRecord(id: .generate(), workflow: "w", trigger: RunTrigger(), createdAt: start), steps: [],
                                now: start, lists: ListIndexSnapshot())
        #expect(try expression("data").evaluate(in: noData) == .null)
        #expect(try expression("input").evaluate(in: noData) == .null)
    }
}
