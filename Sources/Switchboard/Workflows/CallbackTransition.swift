import CEL
import Foundation

/// What a verified callback does to the step it matched, computed by the engine without I/O; a
/// store writes it as it is (``Store/receiveCallback(_:change:)``).
public struct CallbackChange: Sendable, Equatable {
    public var step: StepChange
    /// The step's next request, when the connector asked for a second call.
    public var followUp: Delivery?
}

extension ConnectorOutcome {
    /// The rule for callbacks: what the connector's reading of a callback (`self`) does to the
    /// step it matched, whose definition is `step`, at `now`. Nil when nothing changes yet.
    ///
    /// The step completes with the output or fails with the error when its run advances; it may
    /// wait for another correlation id, or, for a connector step, send a second request.
    public func change(for match: CallbackMatch, step: Step?, at now: Date) -> CallbackChange? {
        let patch: StepChange.Patch
        var followUp: Delivery?
        switch self {
        case let .done(output):
            patch = .answered(output, attempts: nil)
        case let .failed(error):
            patch = .failed(error, attempts: nil)
        case let .awaitCallback(correlation):
            guard let connector = match.awaited?.connector else { return nil }
            patch = .awaiting(CallbackKey(connector: connector, correlation: correlation), attempts: nil)
        case let .next(request):
            guard case let .connector(connector, operation, _)? = step?.kind else {
                patch = .failed(StepError(errorClass: "invalid_callback",
                                          message: "a callback asked step '\(match.stepID)' for a second request, but it is not a connector step"),
                                attempts: nil)
                break
            }
            let next = Delivery(id: .generate(at: now), runID: match.runID, stepID: match.stepID, connector: connector,
                                operation: operation, request: request, retry: step?.retry, nextAttemptAt: now, createdAt: now)
            followUp = next
            patch = .redirected(next.id)
        case .pending:
            return nil
        }
        return CallbackChange(step: StepChange(runID: match.runID, stepID: match.stepID, deliveryID: nil, patch: patch),
                              followUp: followUp)
    }
}
