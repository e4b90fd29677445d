import CEL
import Foundation

/// What an attempt's result does to its delivery and to the step waiting for it, computed by the
/// engine without I/O (``AttemptResult/transition(of:at:)``); a store persists it as it is
/// (``Store/commitAttempt(_:checkpoint:)``).
public struct AttemptCommit: Sendable, Equatable {
    /// The delivery as the attempt leaves it.
    public var delivery: Delivery
    /// The attempt count the delivery had when it was taken to be sent, and the lease it was
    /// held under: with its `sending` status, the fence. A store writes the new state only while
    /// its row still says all three, so a result from a holder whose lease expired, and whose
    /// delivery another instance took over, changes nothing.
    public var heldAttempts: Int
    public var heldBy: InstanceID?
    /// The attempt's log record; nil when nothing was sent (the circuit was open).
    public var attempt: DeliveryAttempt?
    /// The step's next request, when the connector asked for a second call.
    public var followUp: Delivery?
    /// What changes in the step that waits for the delivery; nil for a detached delivery.
    public var step: StepChange?
}

/// A change to the step that waits for a delivery or a callback.
public struct StepChange: Sendable, Equatable {
    public enum Patch: Sendable, Equatable {
        /// The step's answer: it completes when its run advances. `attempts`: the step's count of
        /// attempts, when the answer comes from one (nil leaves the count).
        case answered(JSON, attempts: Int?)
        /// The step failed; its `on_error` decides when its run advances.
        case failed(StepError, attempts: Int?)
        /// The step now waits for a connector's callback carrying this correlation id.
        case awaiting(CallbackKey, attempts: Int?)
        /// Another attempt will be made: the count moves.
        case attempts(Int)
        /// The step now waits for this delivery instead (a connector's second call).
        case redirected(DeliveryID)
    }

    public var runID: RunID
    public var stepID: String
    /// The delivery the step must still be waiting for; nil when any waiting state will do (a callback).
    public var deliveryID: DeliveryID?
    public var patch: Patch

    public init(runID: RunID, stepID: String, deliveryID: DeliveryID?, patch: Patch) {
        self.runID = runID
        self.stepID = stepID
        self.deliveryID = deliveryID
        self.patch = patch
    }

    /// Whether the run has something new to act on: it should advance now. The other patches only
    /// move the run's version, so that a checkpoint made before them is refused.
    public var settles: Bool {
        switch patch {
        case .answered, .failed, .awaiting: true
        case .attempts, .redirected: false
        }
    }

    /// Whether the change is the step's answer: a step takes one, and later ones change nothing.
    public var answers: Bool {
        switch patch {
        case .answered, .failed: true
        case .awaiting, .attempts, .redirected: false
        }
    }

    /// Whether `step` is the one this change is for, in the state it may be changed in: waiting
    /// (for the change's delivery, if it names one), and without an answer when the change is one.
    public func applies(to step: StepRecord) -> Bool {
        step.id == stepID && step.status == .waiting && (deliveryID == nil || step.deliveryID == deliveryID)
            && (!answers || (step.output == nil && step.error == nil))
    }

    /// An outside decision on a waiting step (a review): its output.
    public static func decision(_ output: JSON, run: RunID, step: String) -> StepChange {
        StepChange(runID: run, stepID: step, deliveryID: nil, patch: .answered(output, attempts: nil))
    }

    /// The step with the change applied.
    public func applied(to step: StepRecord) -> StepRecord {
        var step = step
        switch patch {
        case let .answered(output, attempts):
            step.output = output
            step.error = nil
            step.attempts = attempts ?? step.attempts
        case let .failed(error, attempts):
            step.error = error
            step.attempts = attempts ?? step.attempts
        case let .awaiting(key, attempts):
            step.awaitedCallback = key
            step.attempts = attempts ?? step.attempts
        case let .attempts(count):
            step.attempts = count
        case let .redirected(delivery):
            step.deliveryID = delivery
            step.awaitedCallback = nil
        }
        return step
    }

    /// Applies the change to the run in memory; returns the changed step, or nil (and changes
    /// nothing) when no step of the run waits in the state the change is for.
    public func apply(to snapshot: inout RunSnapshot) -> StepRecord? {
        guard let index = snapshot.steps.firstIndex(where: applies(to:)) else { return nil }
        snapshot.steps[index] = applied(to: snapshot.steps[index])
        return snapshot.steps[index]
    }
}

extension RunCheckpoint {
    /// Makes the checkpoint carry a step's change made before the run advanced: the step's record
    /// keeps what the change wrote where the checkpoint leaves it empty, as a store's upsert keeps
    /// a row's values; a step the checkpoint does not touch is added as changed.
    public mutating func carry(_ changed: StepRecord) {
        guard let index = steps.firstIndex(where: { $0.id == changed.id }) else {
            steps.append(changed)
            return
        }
        steps[index].output = steps[index].output ?? changed.output
        steps[index].error = steps[index].error ?? changed.error
        steps[index].deliveryID = steps[index].deliveryID ?? changed.deliveryID
        steps[index].awaitedCallback = steps[index].awaitedCallback ?? changed.awaitedCallback
    }
}

extension AttemptResult {
    /// The rule of the delivery semantics: what this result does to `delivery` (as its holder
    /// took it to be sent) and to its step, at `now`.
    ///
    /// - A success, a callback to wait for or a second call ends the delivery `succeeded`; the
    ///   step gets the output, the correlation id, or the new delivery to wait for.
    /// - A retry puts the delivery back to `pending` at its next attempt time, with the attempt's
    ///   error; the step counts the attempt.
    /// - Giving up ends the delivery `failed` or `dead`, and the step fails with the error.
    /// - A postponed delivery (its connector's circuit is open) is due again later; nothing was
    ///   attempted and nothing else changes.
    ///
    /// A detached delivery (a notice about a step, such as a Slack message update) never touches a step.
    public func transition(of delivery: Delivery, at now: Date) -> AttemptCommit {
        let attempts = delivery.attemptCount + (attempt == nil ? 0 : 1)
        var next = delivery
        next.attemptCount = attempts
        next.updatedAt = now
        next.lease = nil
        var followUp: Delivery?
        var patch: StepChange.Patch?
        switch outcome {
        case let .succeeded(output):
            next.settle(.succeeded, error: nil)
            patch = .answered(output, attempts: max(attempts, 1))
        case let .awaiting(correlation):
            next.settle(.succeeded, error: nil)
            patch = .awaiting(CallbackKey(connector: delivery.connector, correlation: correlation), attempts: max(attempts, 1))
        case let .followUp(request):
            next.settle(.succeeded, error: nil)
            let second = Delivery(id: .generate(at: now), runID: delivery.runID, stepID: delivery.stepID,
                                  connector: delivery.connector, operation: delivery.operation, request: request,
                                  retry: delivery.retry, nextAttemptAt: now, detached: delivery.detached, createdAt: now)
            followUp = second
            patch = .redirected(second.id)
        case let .retry(at):
            next.status = .pending
            next.nextAttemptAt = at
            next.manual = false
            next.lastError = attempt?.errorClass.map { StepError(errorClass: $0, message: attempt?.errorMessage ?? $0) }
            patch = .attempts(attempts)
        case let .gaveUp(status, error):
            next.settle(status, error: error)
            patch = .failed(error, attempts: max(attempts, 1))
        case let .postponed(until):
            next.status = .pending
            next.nextAttemptAt = until
            next.attemptCount = delivery.attemptCount
        }
        let step = delivery.detached ? nil : patch.map {
            StepChange(runID: delivery.runID, stepID: delivery.stepID, deliveryID: delivery.id, patch: $0)
        }
        return AttemptCommit(delivery: next, heldAttempts: delivery.attemptCount, heldBy: delivery.lease?.owner, attempt: attempt,
                             followUp: followUp, step: step)
    }
}

extension Delivery {
    /// Ends the delivery: no next attempt, the operator's retry used.
    fileprivate mutating func settle(_ status: DeliveryStatus, error: StepError?) {
        self.status = status
        nextAttemptAt = nil
        manual = false
        lastError = error
    }
}
