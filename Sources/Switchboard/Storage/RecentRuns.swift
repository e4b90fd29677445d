import Foundation
import Synchronization

/// Runs as this process last committed them, each at its version, so that recording a
/// delivery's result can advance its run without reading the run and its steps back.
///
/// Only an exact copy is useful: a snapshot is remembered after the transaction that wrote it
/// committed, and what is made from it commits only while the run's version in the store is
/// still the one it was remembered at. Every write to a run or its steps moves the version
/// (``SQLiteStore/apply(_:_:)``, `wake`, `touch`), so a run changed by anyone else (another
/// process, an answer from outside, the scheduler) is read from the store again. Bounded: the
/// oldest entry goes first.
final class RecentRuns: Sendable {
    private let memory: Mutex<BoundedMemory<RunID, RunSnapshot>>
    /// How often a run was found at the store's version, and how often not (for tests and profiling).
    let hits = Atomic(0)
    let misses = Atomic(0)

    init(capacity: Int = 4096) {
        memory = Mutex(BoundedMemory(capacity: capacity))
    }

    /// Keeps `snapshot` unless a later version of the run is kept already; a finished run is
    /// forgotten, since nothing advances it again.
    func remember(_ snapshot: RunSnapshot) {
        let id = snapshot.run.id
        memory.withLock { memory in
            if snapshot.run.status.isFinished {
                memory.remove(id)
            } else if (memory[id]?.run.version ?? -1) < snapshot.run.version {
                memory.store(snapshot, for: id)
            }
        }
    }

    /// The run as last remembered, at whichever version: the caller makes sure it is still the
    /// store's version before relying on it (``SQLiteStore`` lets the run's versioned UPDATE do it).
    func latest(_ id: RunID) -> RunSnapshot? {
        memory.withLock { memory in memory[id] }
    }

    /// Counts a remembered run that was, or was not, still at the store's version.
    func found(current: Bool) {
        if current { hits.add(1, ordering: .relaxed) } else { misses.add(1, ordering: .relaxed) }
    }

    var count: Int { memory.withLock { $0.count } }
}
