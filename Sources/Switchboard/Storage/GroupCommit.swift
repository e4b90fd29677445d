import Foundation
import GRDB
import Synchronization

/// Batches concurrent writes into shared SQLite transactions.
///
/// The first writer to arrive while no batch is being written becomes the leader: it takes every
/// queued write, runs each in its own savepoint inside one transaction, commits once (one
/// fsync), and wakes the others. Nobody is answered before the commit that holds their write.
final class GroupCommit: Sendable {
    private struct Entry: Sendable {
        let body: @Sendable (Database) throws -> Void
        let complete: @Sendable (Result<Void, any Error>) -> Void
    }

    private struct State {
        var queue: [Entry] = []
        var leaderActive = false
    }

    private let writer: DatabasePool
    private let state = Mutex(State())
    /// Upper bound on writes per transaction, so one batch cannot grow without limit.
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
            complete: { result in promise.complete(result) })
        let lead = state.withLock { state in
            state.queue.append(entry)
            if state.leaderActive { return false }
            state.leaderActive = true
            return true
        }
        if lead { await drain() }
        return try await promise.value
    }

    private func drain() async {
        while true {
            let batch: [Entry] = state.withLock { state in
                if state.queue.isEmpty {
                    state.leaderActive = false
                    return []
                }
                let taken = Array(state.queue.prefix(maxBatch))
                state.queue.removeFirst(taken.count)
                return taken
            }
            if batch.isEmpty { return }
            do {
                let outcomes: [Result<Void, any Error>] = try await writer.write { db in
                    var outcomes: [Result<Void, any Error>] = []
                    outcomes.reserveCapacity(batch.count)
                    // One savepoint per write, so that a failing write is undone alone. The
                    // statements come from the connection's cache (GRDB's inSavepoint compiles them each time).
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
                }
                for (entry, outcome) in zip(batch, outcomes) { entry.complete(outcome) }
            } catch {
                for entry in batch { entry.complete(.failure(error)) }
            }
        }
    }
}

/// A value set once by a writer and awaited by its caller.
final class Promise<T: Sendable>: Sendable {
    private struct State {
        var staged: T?
        var result: Result<T, any Error>?
        var waiter: CheckedContinuation<T, any Error>?
    }

    private let state = Mutex(State())

    /// Remembers the value computed inside the transaction, delivered once it commits.
    func stage(_ value: T) { state.withLock { $0.staged = value } }

    func complete(_ outcome: Result<Void, any Error>) {
        let waiter: CheckedContinuation<T, any Error>?
        let result: Result<T, any Error>
        (waiter, result) = state.withLock { state in
            let result: Result<T, any Error> = switch outcome {
            case .success: state.staged.map { .success($0) } ?? .failure(StoreError.corrupt("write produced no value"))
            case let .failure(error): .failure(error)
            }
            state.result = result
            let waiter = state.waiter
            state.waiter = nil
            return (waiter, result)
        }
        waiter?.resume(with: result)
    }

    var value: T {
        get async throws {
            try await withCheckedThrowingContinuation { continuation in
                let ready: Result<T, any Error>? = state.withLock { state in
                    if let result = state.result { return result }
                    state.waiter = continuation
                    return nil
                }
                if let ready { continuation.resume(with: ready) }
            }
        }
    }
}
