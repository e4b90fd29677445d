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
