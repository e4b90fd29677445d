import Foundation
import GRDB
import Synchronization

/// Batches concurrent writes into shared SQLite transactions.
///
/// A writer that arrives while no batch is being written leads: it takes every queued write (its
/// own first), runs each in its own savepoint inside one transaction, commits once (one fsync),
/// and wakes their callers. If more writes queued meanwhile, it hands the lead to the oldest of
/// them, so that no caller writes more than one batch for others. Nobody is answered before the
/// commit that holds their write.
final class GroupCommit: Sendable {
    fileprivate struct Entry: Sendable {
        let body: @Sendable (Database) throws -> Void
        let complete: @Sendable (Result<Void, any Error>) -> Void
        let lead: @Sendable () -> Void
    }

    private struct State {
        var queue: [Entry] = []
        var leaderActive = false
    }

    fileprivate let writer: DatabasePool
    private let state = Mutex(State())
    /// Upper bound on writes per transaction.
    private let maxBatch: Int

    init(writer: DatabasePool, maxBatch: Int = 512) {
        self.writer = writer
        self.maxBatch = maxBatch
    }

    /// Runs `body` in a transaction shared with other concurrent writes and returns once committed.
    func write<T: Sendable>(_ body: @escaping @Sendable (Database) throws -> T) async throws -> T {
        let promise = Promise<T>()
        let entry = Entry(
            body: { db in promise.stage(try body(db)) },
            complete: { result in promise.complete(result) },
            lead: { promise.lead() })
        var leading = state.withLock { state in
            state.queue.append(entry)
            if state.leaderActive { return false }
            state.leaderActive = true
            return true
        }
        while true {
            if leading {
                await writeOneBatch()
                leading = false
            }
            switch try await promise.next() {
            case let .value(value): return value
            case .lead: leading = true
            }
        }
    }

    private func writeOneBatch() async {
        let batch: [Entry] = state.withLock { state in
            let taken = Array(state.queue.prefix(maxBatch))
            state.queue.removeFirst(taken.count)
            return taken
        }
        if !batch.isEmpty {
            do {
                let outcomes = try await commit(batch)
                for (entry, outcome) in zip(batch, outcomes) { entry.complete(outcome) }
            } catch {
                for entry in batch { entry.complete(.failure(error)) }
            }
        }
        let next: Entry? = state.withLock { state in
            if let first = state.queue.first { return first }
            state.leaderActive = false
            return nil
        }
        next?.lead()
    }
}

extension GroupCommit {
    /// Writes a batch in one transaction, each write in its own savepoint so that a failing write
    /// is undone alone. It uses GRDB's callback API, not the async one: the leader's own request
    /// being cancelled (its client went away) must not cancel a transaction that holds other
    /// callers' writes.
    fileprivate func commit(_ batch: [Entry]) async throws -> [Result<Void, any Error>] {
        try await withCheckedThrowingContinuation { continuation in
            writer.asyncWrite({ db in
                var outcomes: [Result<Void, any Error>] = []
                outcomes.reserveCapacity(batch.count)
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
                return outcomes
            }, completion: { _, result in continuation.resume(with: result) })
        }
    }
}

/// What a writer waits for: its committed value, or the lead of the next batch.
final class Promise<T: Sendable>: Sendable {
    enum Signal: Sendable {
        case value(T)
        case lead
    }

    private struct State {
        var staged: T?
        var result: Result<T, any Error>?
        var leadPending = false
        var waiter: CheckedContinuation<Signal, any Error>?
    }

    private let state = Mutex(State())

    /// Remembers the value computed inside the transaction, delivered once it commits.
    func stage(_ value: T) { state.withLock { $0.staged = value } }

    func complete(_ outcome: Result<Void, any Error>) {
        let (waiter, result): (CheckedContinuation<Signal, any Error>?, Result<T, any Error>) = state.withLock { state in
            let result: Result<T, any Error> = switch outcome {
            case .success: state.staged.map { .success($0) } ?? .failure(StoreError.corrupt("write produced no value"))
            case let .failure(error): .failure(error)
            }
            state.result = result
            let waiter = state.waiter
            state.waiter = nil
            return (waiter, result)
        }
        waiter?.resume(with: result.map { .value($0) })
    }

    func lead() {
        let waiter: CheckedContinuation<Signal, any Error>? = state.withLock { state in
            if let waiter = state.waiter {
                state.waiter = nil
                return waiter
            }
            state.leadPending = true
            return nil
        }
        waiter?.resume(returning: .lead)
    }

    func next() async throws -> Signal {
        try await withCheckedThrowingContinuation { continuation in
            let ready: Result<Signal, any Error>? = state.withLock { state in
                if let result = state.result { return result.map { .value($0) } }
                if state.leadPending {
                    state.leadPending = false
                    return .success(.lead)
                }
                state.waiter = continuation
                return nil
            }
            if let ready { continuation.resume(with: ready) }
        }
    }
}
