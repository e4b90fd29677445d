import CEL
import Foundation

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
