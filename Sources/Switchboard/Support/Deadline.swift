import Synchronization

/// Races an operation against a deadline without waiting for the loser: a task group would wait
/// for its every child, so an operation that ignores cancellation (a database driver waiting on a
/// connection that died) would hold its caller past any deadline.
enum Deadline {
    /// The result of `operation`, or the error `expiry` returns when it returns first; the loser is
    /// cancelled and left to end by itself. Cancelling the caller cancels both.
    static func race<T: Sendable>(_ operation: @escaping @Sendable () async throws -> T,
                                  expiry: @escaping @Sendable () async throws -> any Error) async throws -> T {
        let race = Race<T>()
        return try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { continuation in
                race.start(continuation, tasks: [
                    Task { race.finish(await Result(catching: { try await operation() })) },
                    Task {
                        do { race.finish(.failure(try await expiry())) } catch { race.finish(.failure(error)) }
                    },
                ])
            }
        } onCancel: {
            race.finish(.failure(CancellationError()))
        }
    }

    /// Who answers first, and the tasks to cancel then.
    private final class Race<T: Sendable>: Sendable {
        private struct State {
            var continuation: CheckedContinuation<T, any Error>?
            var result: Result<T, any Error>?
            var tasks: [Task<Void, Never>] = []
        }

        private let state = Mutex(State())

        func start(_ continuation: CheckedContinuation<T, any Error>, tasks: [Task<Void, Never>]) {
            let early: Result<T, any Error>? = state.withLock { state in
                state.tasks = tasks
                if let result = state.result { return result }
                state.continuation = continuation
                return nil
            }
            if let early {
                continuation.resume(with: early)
                for task in tasks { task.cancel() }
            }
        }

        func finish(_ result: Result<T, any Error>) {
            let (continuation, tasks) = state.withLock { state -> (CheckedContinuation<T, any Error>?, [Task<Void, Never>]) in
                guard state.result == nil else { return (nil, []) }
                state.result = result
                defer { state.continuation = nil }
                return (state.continuation, state.tasks)
            }
            continuation?.resume(with: result)
            for task in tasks { task.cancel() }
        }
    }
}

extension Result where Failure == any Error {
    init(catching body: () async throws -> Success) async {
        do { self = .success(try await body()) } catch { self = .failure(error) }
    }
}
