import ServiceLifecycle

/// Listens for the hints instances give one another when they leave work any of them could take
/// (``Store/watchForWork(_:)``: `LISTEN/NOTIFY` on PostgreSQL) and wakes this instance's run
/// scheduler and delivery worker, so that work starts within milliseconds on an idle cluster rather
/// than at the next poll. Polling stays the backstop: a lost hint delays work, never loses it.
final class WorkHintListener: Service {
    let store: any Store
    let wake: [@Sendable () -> Void]

    init(store: any Store, wake: [@Sendable () -> Void]) {
        self.store = store
        self.wake = wake
    }

    func run() async throws {
        try? await cancelWhenGracefulShutdown { [store, wake] in
            await store.watchForWork { for ring in wake { ring() } }
            // A store one instance uses alone has no hints: a service that returns would stop the gateway.
            try await gracefulShutdown()
        }
    }
}
