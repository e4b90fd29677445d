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
        // Not awaited at shutdown: a listening connection the pool lost and is getting back may not
        // answer cancellation at once, and a hint is worth nothing once the instance stops.
        let listening = Task { [store, wake] in await store.watchForWork { for ring in wake { ring() } } }
        try? await gracefulShutdown()
        listening.cancel()
    }
}
