import Foundation
import GRDB
import Synchronization

/// Batches concurrent writes into shared SQLite transactions.
///
/// Callers queue their writes and wait. SQLite's writer thread drains the queue: it takes every
/// queued write, runs them in one transaction, commits once (one fsync), answers their callers,
/// and goes straight on with whatever queued meanwhile. Nobody is answered before the commit that
/// holds their write, and a failing write fails alone (``commit(_:_:)``).
///
/// The writer thread keeps the lead itself. An earlier version let the first caller of each batch
/// lead it from the concurrency pool and hand the lead to the next caller afterwards; between two
/// commits the writer then sat idle for three thread hops (commit done → leader resumed → next
/// leader resumed → dispatched to the writer), each delayed further when both cores were busy.
final class GroupCommit: Sendable {
    fileprivate struct Entry: Sendable {
        let body: @Sendable (Database) throws -> Void
        let complete: @Sendable (Result<Void, any Error>) -> Void
    }

    private struct State {
        var queue: [Entry] = []
        /// Whether a drain is scheduled or running on the writer.
        var draining = false
    }

    fileprivate let writer: DatabasePool
    private let state = Mutex(State())
    /// Upper bound on writes per transaction.
    private let maxBatch: Int
    /// Transactions one drain commits before it gives the writer queue back (and takes it again
    /// if writes are still waiting), so that nothing else waiting for the writer starves.
    private let batchesPerDrain = 64
    /// Writes that queued meanwhile join an open transaction until it holds this many, which
    /// bounds how long the first of them waits for the commit.
    private let joinLimit = 128

    init(writer: DatabasePool, maxBatch: Int = 512) {
        self.writer = writer
        self.maxBatch = maxBatch
    }

    /// Runs `body` in a transaction shared with other concurrent writes and returns once committed.
    func write<T: Sendable>(_ body: @escaping @Sendable (Database) throws -> T) async throws -> T {
        let staged = StagedValue<T>()
        try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
            let entry = Entry(body: { db in staged.set(try body(db)) }, complete: { continuation.resume(with: $0) })
            let start = state.withLock { state in
                state.queue.append(entry)
                if state.draining { return false }
                state.draining = true
                return true
            }
            if start { drain() }
        }
        return try staged.take()
    }

    /// Commits batches on the writer until the queue is empty.
    private func drain() {
        // GRDB's callback API, not its async one: no caller's task is involved, so a caller that
        // goes away (its client disconnected) cannot cancel a transaction holding others' writes.
        writer.asyncWriteWithoutTransaction { db in
            for _ in 0 ..< self.batchesPerDrain {
                let first = self.take(upTo: self.maxBatch)
                if first.isEmpty { return }
                self.commit(first, db)
            }
            // Still busy: let anything else waiting for the writer in, then carry on.
            self.drain()
        }
    }

    /// Up to `limit` queued writes. When there are none and `endingDrain`, the drain ends (a
    /// write queued after this starts a new one); writes joining an open transaction leave it on.
    private func take(upTo limit: Int, endingDrain: Bool = true) -> [Entry] {
        state.withLock { state in
            let taken = Array(state.queue.prefix(limit))
            state.queue.removeFirst(taken.count)
            if taken.isEmpty, endingDrain { state.draining = false }
            return taken
        }
    }

    /// Writes queued writes in one transaction and answers every caller once the commit is done.
    ///
    /// Writes that queue while the transaction is being written join it before it commits (up to
    /// `joinLimit`): the commit, its WAL frames and its fsync are shared by more writes. Committing
    /// each batch as soon as it was written made batches of 6–7 writes at 9,000 events/s, each
    /// commit writing some 30 WAL frames, two `pwrite`s each, on the critical thread.
    ///
    /// The writes run without savepoints: a savepoint makes SQLite copy every page a write changes
    /// into its statement journal first (4 KiB each, about 20 pages per forwarded event). When one
    /// write fails, the whole transaction is rolled back and the same writes run again, each in its
    /// own savepoint (``commitIsolated(_:_:)``), so that only the failing one is undone. A write
    /// may therefore run twice before it commits once; its body must do nothing outside the
    /// database that cannot be done twice. This roughly halves the store's work per forwarded event
    /// (`switchboard-bench store`, Benchmarks/README.md).
    private func commit(_ first: [Entry], _ db: Database) {
        var batch = first
        var failed = false
        do {
            try Self.transaction(db) {
                var next = 0
                while next < batch.count {
                    do {
                        try batch[next].body(db)
                    } catch {
                        failed = true
                        return .rollback
                    }
                    next += 1
                    if next == batch.count, batch.count < joinLimit {
                        batch += take(upTo: joinLimit - batch.count, endingDrain: false)
                    }
                }
                return .commit
            }
        } catch {
            for entry in batch { entry.complete(.failure(error)) }
            return
        }
        if failed {
            commitIsolated(batch, db)
        } else {
            for entry in batch { entry.complete(.success(())) }
        }
    }

    /// Writes a batch in which a write failed: each write in its own savepoint, so that a failing
    /// write is undone alone and the others commit.
    private func commitIsolated(_ batch: [Entry], _ db: Database) {
        var outcomes: [Result<Void, any Error>] = []
        outcomes.reserveCapacity(batch.count)
        do {
            try Self.transaction(db) {
                // Cached statements: GRDB's inSavepoint compiles them on every call.
                let begin = try db.cachedStatement(sql: "SAVEPOINT entry")
                let release = try db.cachedStatement(sql: "RELEASE SAVEPOINT entry")
                let rollback = try db.cachedStatement(sql: "ROLLBACK TO SAVEPOINT entry")
                for entry in batch {
                    try begin.execute()
                    do {
                        try entry.body(db)
                        try release.execute()
                        outcomes.append(.success(()))
                    } catch {
                        try rollback.execute()
                        try release.execute()
                        outcomes.append(.failure(error))
                    }
                }
                return .commit
            }
        } catch {
            for entry in batch { entry.complete(.failure(error)) }
            return
        }
        for (entry, outcome) in zip(batch, outcomes) { entry.complete(outcome) }
    }
}

extension GroupCommit {
    /// `BEGIN IMMEDIATE` … `COMMIT` (or a rollback when `body` says so or throws), with the two
    /// statements compiled once: GRDB's `inTransaction` compiles them on every call, two
    /// `sqlite3_prepare` per commit, each through GRDB's authorizer.
    static func transaction(_ db: Database, _ body: () throws -> Database.TransactionCompletion) throws {
        try db.cachedStatement(sql: "BEGIN IMMEDIATE TRANSACTION").execute()
        let completion: Database.TransactionCompletion
        do {
            completion = try body()
        } catch {
            try? db.rollback()
            throw error
        }
        switch completion {
        case .commit:
            do {
                try db.cachedStatement(sql: "COMMIT TRANSACTION").execute()
            } catch {
                // A commit that failed (the disk is full, say) may have left the transaction open.
                if db.isInsideTransaction { try? db.rollback() }
                throw error
            }
        case .rollback:
            try db.rollback()
        }
    }
}

/// The value a write computed inside its transaction, handed to its caller once committed.
private final class StagedValue<T: Sendable>: Sendable {
    private let value = Mutex<T?>(nil)

    func set(_ new: T) { value.withLock { $0 = new } }

    func take() throws -> T {
        guard let taken = value.withLock({ $0.take() }) else { throw StoreError.corrupt("write produced no value") }
        return taken
    }
}
