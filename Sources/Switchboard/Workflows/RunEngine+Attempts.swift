import Foundation
import Logging

extension RunEngine {
    /// Applies a delivery attempt's result: the delivery's new state and the change to its step
    /// (``AttemptResult/transition(of:at:)``), and when the step settles, the run advanced as far as
    /// it goes, all committed together. `delivery` is the delivery as its holder took it to be sent.
    ///
    /// The run is first taken as the store may remember it; when that copy turns out stale, the
    /// run is loaded again. When the run cannot be advanced here (it is finished, or kept
    /// changing), the step's change is committed alone and the scheduler advances the run.
    func settle(_ result: AttemptResult, of delivery: Delivery) async throws {
        let commit = result.transition(of: delivery, at: clock.now())
        if let change = commit.step, change.settles {
            var allowStale = true
            for _ in 0 ..< 5 {
                guard var snapshot = try await store.loadRun(change.runID, allowStale: allowStale),
                      let answered = change.apply(to: &snapshot),
                      var checkpoint = step(snapshot)
                else { break }
                checkpoint.carry(answered)
                let outcome = try await self.commit([checkpoint], after: snapshot.run.status) { checkpoints in
                    try await store.commitAttempt(commit, checkpoint: checkpoints[0])
                } committed: { $0 == .committed }
                switch outcome {
                case .committed: return
                case .conflict: allowStale = false
                case .fenced: return lost(delivery)
                }
            }
        }
        // Without a checkpoint, a settling change makes the run due: the scheduler's poll advances it.
        if try await store.commitAttempt(commit, checkpoint: nil) == .fenced { lost(delivery) }
    }

    private func lost(_ delivery: Delivery) {
        logger.warning("a delivery's result was not recorded: the delivery is no longer held by this attempt",
                       metadata: ["delivery_id": "\(delivery.id)"])
    }
}
