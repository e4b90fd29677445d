import CEL
import Foundation
import Testing
@testable import Switchboard

/// The engine's rules for what an attempt's result or a callback does to a delivery, its step and
/// its run: pure functions, checked without a database.
@Suite("Transitions")
struct TransitionTests {
    static let now = Date(timeIntervalSince1970: 1_800_000_000)

    /// A delivery as its holder took it to be sent, after `attempts` earlier attempts.
    static func held(attempts: Int = 0, detached: Bool = false, manual: Bool = false) -> Delivery {
        Delivery(id: DeliveryID("dlv_1"), runID: RunID("run_1"), stepID: "send", connector: "crm", operation: "notify",
                 status: .sending, request: OutboundRequest(method: "POST", url: "https://crm.example.com/hook", body: "{}"),
                 retry: RetrySettings(maxAttempts: 3), attemptCount: attempts, nextAttemptAt: now, manual: manual,
                 detached: detached, createdAt: now.addingTimeInterval(-60))
    }

    static func attempt(_ number: Int, errorClass: String? = nil) -> DeliveryAttempt {
        DeliveryAttempt(deliveryID: DeliveryID("dlv_1"), number: number, trigger: .scheduled, startedAt: now, durationMilliseconds: 5,
                        request: ["method": "POST"], response: errorClass == nil ? ["status": 200] : nil, errorClass: errorClass,
                        errorMessage: errorClass.map { "the \($0) happened" })
    }

    static func result(_ outcome: AttemptResult.Outcome, attempt: DeliveryAttempt? = attempt(1)) -> AttemptResult {
        AttemptResult(deliveryID: DeliveryID("dlv_1"), attempt: attempt, outcome: outcome)
    }

    @Test("a success ends the delivery and answers its step, which settles the run")
    func success() {
        let commit = Self.result(.succeeded(output: ["status": 201])).transition(of: Self.held(manual: true), at: Self.now)
        #expect(commit.delivery.status == .succeeded && commit.delivery.attemptCount == 1 && commit.delivery.nextAttemptAt == nil)
        #expect(commit.delivery.manual == false && commit.delivery.lastError == nil && commit.delivery.updatedAt == Self.now)
        #expect(commit.heldAttempts == 0, "fenced on the count the holder saw")
        #expect(commit.attempt?.number == 1 && commit.followUp == nil)
        #expect(commit.step == StepChange(runID: RunID("run_1"), stepID: "send", deliveryID: DeliveryID("dlv_1"),
                                          patch: .answered(["status": 201], attempts: 1)))
        #expect(commit.step?.settles == true)
    }

    @Test("a retry puts the delivery back with its next time and the attempt's error; the step only counts")
    func retry() {
        let at = Self.now.addingTimeInterval(30)
        let commit = Self.result(.retry(at: at), attempt: Self.attempt(2, errorClass: "timeout"))
            .transition(of: Self.held(attempts: 1, manual: true), at: Self.now)
        #expect(commit.delivery.status == .pending && commit.delivery.nextAttemptAt == at && commit.delivery.attemptCount == 2)
        #expect(commit.delivery.lastError == StepError(errorClass: "timeout", message: "the timeout happened"))
        #expect(commit.delivery.manual == false, "an operator's retry is used up by its attempt")
        #expect(commit.heldAttempts == 1)
        #expect(commit.step?.patch == .attempts(2) && commit.step?.settles == false)
    }

    @Test("giving up ends the delivery failed or dead, and fails the step", arguments: [DeliveryStatus.failed, .dead])
    func gaveUp(status: DeliveryStatus) {
        let error = StepError(errorClass: "http_status", message: "the CRM answered 400")
        let commit = Self.result(.gaveUp(status, error)).transition(of: Self.held(), at: Self.now)
        #expect(commit.delivery.status == status && commit.delivery.nextAttemptAt == nil && commit.delivery.lastError == error)
        #expect(commit.step?.patch == .failed(error, attempts: 1) && commit.step?.settles == true)
    }

    @Test("a postponed delivery is due later; nothing was attempted and nothing else changes")
    func postponed() {
        let until = Self.now.addingTimeInterval(30)
        let commit = Self.result(.postponed(until: until), attempt: nil).transition(of: Self.held(attempts: 2, manual: true), at: Self.now)
        #expect(commit.delivery.status == .pending && commit.delivery.nextAttemptAt == until && commit.delivery.attemptCount == 2)
        #expect(commit.delivery.manual == true, "the operator's retry is still to come")
        #expect(commit.attempt == nil && commit.step == nil)
    }

    @Test("a second call is a new delivery for the same step, which waits for it instead")
    func followUp() throws {
        let poll = OutboundRequest(method: "GET", url: "https://vendor.example.com/r/1", stage: "poll")
        let commit = Self.result(.followUp(poll)).transition(of: Self.held(), at: Self.now)
        let next = try #require(commit.followUp)
        #expect(commit.delivery.status == .succeeded)
        #expect(next.id != DeliveryID("dlv_1") && next.runID == RunID("run_1") && next.stepID == "send")
        #expect(next.connector == "crm" && next.operation == "notify" && next.retry == RetrySettings(maxAttempts: 3))
        #expect(next.status == .pending && next.nextAttemptAt == Self.now && next.request == poll)
        #expect(commit.step?.patch == .redirected(next.id) && commit.step?.settles == false)
    }

    @Test("an accepted report makes the step wait for the connector's callback")
    func awaiting() {
        let commit = Self.result(.awaiting(correlation: "rep_1")).transition(of: Self.held(), at: Self.now)
        #expect(commit.step?.patch == .awaiting(CallbackKey(connector: "crm", correlation: "rep_1"), attempts: 1))
        #expect(commit.step?.settles == true)
    }

    @Test("a detached delivery never touches a step")
    func detached() {
        let commit = Self.result(.succeeded(output: ["ok": true])).transition(of: Self.held(detached: true), at: Self.now)
        #expect(commit.delivery.status == .succeeded && commit.step == nil)
    }

    @Test("a step's change applies only to the step waiting for that delivery")
    func applyToRun() throws {
        let waiting = StepRecord(id: "send", parent: nil, sequence: 2, status: .waiting, startedAt: Self.now,
                                 deliveryID: DeliveryID("dlv_1"))
        let run = RunRecord(id: RunID("run_1"), workflow: "w", status: .waiting, trigger: RunTrigger(api: true), createdAt: Self.now)
        let change = StepChange(runID: run.id, stepID: "send", deliveryID: DeliveryID("dlv_1"), patch: .answered(["a": 1], attempts: 3))

        var snapshot = RunSnapshot(run: run, steps: [waiting])
        let changed = try #require(change.apply(to: &snapshot))
        #expect(changed.output == ["a": 1] && changed.attempts == 3 && changed.status == .waiting)
        #expect(snapshot.steps == [changed])

        var redirected = waiting
        redirected.deliveryID = DeliveryID("dlv_2")
        var other = RunSnapshot(run: run, steps: [redirected])
        #expect(change.apply(to: &other) == nil, "the step waits for another delivery now")
        #expect(other.steps == [redirected])
        var completed = waiting
        completed.status = .completed
        var finished = RunSnapshot(run: run, steps: [completed])
        #expect(change.apply(to: &finished) == nil, "a step that ended takes no answer")
        var answered = waiting
        answered.output = ["first": true]
        var once = RunSnapshot(run: run, steps: [answered])
        #expect(change.apply(to: &once) == nil, "a step takes one answer: a poll that loses the race to a callback changes nothing")
        let counted = StepChange(runID: run.id, stepID: "send", deliveryID: DeliveryID("dlv_1"), patch: .attempts(4))
        #expect(counted.apply(to: &once)?.attempts == 4, "what is not an answer still applies")

        let review = StepChange.decision(["decision": "approve"], run: run.id, step: "send")
        #expect(review.deliveryID == nil && review.settles && review.answers)
    }

    @Test("a checkpoint carries a step's change where it leaves the step's fields empty")
    func carry() {
        let run = RunRecord(id: RunID("run_1"), workflow: "w", status: .completed, trigger: RunTrigger(api: true), createdAt: Self.now)
        let answered = StepRecord(id: "send", parent: nil, sequence: 2, status: .waiting, output: ["a": 1], startedAt: Self.now,
                                  deliveryID: DeliveryID("dlv_1"))
        var checkpoint = RunCheckpoint(run: run, steps: [
            StepRecord(id: "send", parent: nil, sequence: 2, status: .completed, startedAt: Self.now, endedAt: Self.now),
        ])
        checkpoint.carry(answered)
        #expect(checkpoint.steps.count == 1)
        #expect(checkpoint.steps[0].status == .completed && checkpoint.steps[0].output == ["a": 1])
        #expect(checkpoint.steps[0].deliveryID == DeliveryID("dlv_1"))

        var untouched = RunCheckpoint(run: run, steps: [])
        untouched.carry(answered)
        #expect(untouched.steps == [answered], "a step the interpreter left alone is written as changed")
    }

    @Test("a callback answers, fails or re-keys the step it matched; a second call needs a connector step")
    func callbacks() throws {
        let match = CallbackMatch(runID: RunID("run_1"), workflow: "w", stepID: "report",
                                  awaited: CallbackKey(connector: "kyb", correlation: "rep_1"), payload: ["x": 1])
        let done = try #require(ConnectorOutcome.done(["ok": true]).change(for: match, step: nil, at: Self.now))
        #expect(done.step == StepChange(runID: RunID("run_1"), stepID: "report", deliveryID: nil, patch: .answered(["ok": true], attempts: nil)))
        #expect(done.step.settles && done.followUp == nil)

        let rekeyed = try #require(ConnectorOutcome.awaitCallback(correlation: "rep_2").change(for: match, step: nil, at: Self.now))
        #expect(rekeyed.step.patch == .awaiting(CallbackKey(connector: "kyb", correlation: "rep_2"), attempts: nil))

        #expect(ConnectorOutcome.pending.change(for: match, step: nil, at: Self.now) == nil, "progress changes nothing yet")

        let poll = OutboundRequest(method: "GET", url: "https://vendor.example.com/r/1")
        let notConnector = try #require(ConnectorOutcome.next(poll).change(for: match, step: nil, at: Self.now))
        guard case let .failed(error, _) = notConnector.step.patch else {
            Issue.record("expected the step to fail, got \(notConnector.step.patch)")
            return
        }
        #expect(error.errorClass == "invalid_callback" && notConnector.followUp == nil)

        let step = Step(id: "report", kind: .connector(connector: "kyb", operation: "tin_check", with: [:]),
                        retry: RetrySettings(maxAttempts: 2), onError: .fail,
                        location: SourceLocation(file: "w.yaml", line: 1, column: 1))
        let second = try #require(ConnectorOutcome.next(poll).change(for: match, step: step, at: Self.now))
        let next = try #require(second.followUp)
        #expect(next.connector == "kyb" && next.operation == "tin_check" && next.retry == RetrySettings(maxAttempts: 2))
        #expect(second.step.patch == .redirected(next.id))
    }
}
