import Foundation
import Synchronization

/// Runs as this process last committed them, each at its version, so that recording a
/// delivery's result can advance its run without reading the run and its steps back.
///
/// Only an exact copy is useful: a snapshot is remembered after the transaction that wrote it
/// committed, and it is used only while the run's version in the store is still the one it was
/// remembered at. Every write to a run or its steps moves the version (``SQLiteStore/apply(_:_:)``,
/// `wake`, `touch`), so a run changed by anyone else (another process, an answer from outside,
/// the scheduler) is read from the store again. Bounded: the oldest entry goes first.
final class RecentRuns: Sendable {
    private struct State {
        var snapshots: [RunID: RunSnapshot] = [:]
        /// Ids in the order they were first remembered, oldest first, from `start` on.
        var order: [RunID] = []
        var start = 0
    }

    let capacity: Int
    private let state = Mutex(State())
    /// How often a run was found at the store's version, and how often not (for tests and profiling).
    let hits = Atomic(0)
    let misses = Atomic(0)

    init(capacity: Int = 4096) {
        self.capacity = capacity
    }

    /// Keeps `snapshot` unless a later version of the run is kept already; a finished run is
    /// forgotten, since nothing advances it again.
    func remember(_ snapshot: RunSnapshot) {
        let id = snapshot.run.id
        state.withLock { state in
            if snapshot.run.status.isFinished {
                state.snapshots[id] = nil
                return
            }
            if let kept = state.snapshots[id] {
                if kept.run.version < snapshot.run.version { state.snapshots[id] = snapshot }
                return
            }
            state.snapshots[id] = snapshot
            state.order.append(id)
            // Ids of forgotten runs stay in `order` until their turn to go comes; evict live entries
            // only while over capacity.
            while state.snapshots.count > capacity, state.start < state.order.count {
                state.snapshots[state.order[state.start]] = nil
                state.start += 1
            }
            if state.start >= capacity || state.order.count > 4 * capacity {
                let live = state.order[state.start...].filter { state.snapshots[$0] != nil }
                state.order = Array(live)
                state.start = 0
            }
        }
    }

    /// The run as remembered, if it is at `version`.
    func snapshot(_ id: RunID, version: Int) -> RunSnapshot? {
        let found = state.withLock { state -> RunSnapshot? in
            guard let snapshot = state.snapshots[id], snapshot.run.version == version else { return nil }
            return snapshot
        }
        if found == nil { misses.add(1, ordering: .relaxed) } else { hits.add(1, ordering: .relaxed) }
        return found
    }

    var count: Int { state.withLock { $0.snapshots.count } }
}
