import Foundation
import Synchronization

/// The delivery worker's intake, in memory: the deliveries this process committed already claimed,
/// whether due deliveries may be waiting in the store, and how many deliveries are in flight.
///
/// A checkpoint whose deliveries are due at once reserves room here before it commits
/// (``reserve(_:)``); those deliveries are written `sending`, claimed by this process in the same
/// transaction that creates them, and handed over once committed (``hand(_:)``), so sending them
/// costs no claim transaction. A commit that fails gives its room back (``release(_:)``). A process
/// that stops before sending what it was handed leaves those deliveries `sending`; the next start
/// puts them back to `pending` (``Store/releaseDeliveries()``), so none is lost.
///
/// Everything else (retries, deliveries due later, ones committed while the queue was full) waits
/// in the store, and ``ring()`` tells the worker to claim from there.
final class DeliveryQueue: Sendable {
    /// What the worker should do next.
    struct Work: Sendable {
        /// Deliveries committed `sending` by this process, to attempt now (their room is taken).
        var handed: [Delivery]
        /// Room to claim from the store, 0 when the store has nothing new or the queue is full.
        var claimRoom: Int
        /// The queue was closed: the worker stops.
        var closed: Bool
    }

    private struct State {
        /// Whether the worker takes deliveries: between ``open()`` and ``close()``.
        var open = false
        var closed = false
        /// Reserved, handed over, claimed, or being attempted.
        var inFlight = 0
        var handed: [Delivery] = []
        var storeHasWork = true
        var waiter: CheckedContinuation<Work, Never>?
    }

    /// The most deliveries in flight at once.
    let capacity: Int
    /// The most deliveries one claim takes from the store.
    let claimBatch: Int
    private let state = Mutex(State())

    init(capacity: Int = 256, claimBatch: Int = 128) {
        self.capacity = capacity
        self.claimBatch = claimBatch
    }

    /// Reserves room for up to `count` deliveries that a checkpoint is about to commit as `sending`;
    /// returns how many it granted (none while the worker is not running or the queue is full).
    func reserve(_ count: Int) -> Int {
        state.withLock { state in
            guard state.open, count > 0 else { return 0 }
            let granted = min(count, capacity - state.inFlight)
            guard granted > 0 else { return 0 }
            state.inFlight += granted
            return granted
        }
    }

    /// Gives back room reserved for deliveries whose commit failed.
    func release(_ count: Int) {
        guard count > 0 else { return }
        update { $0.inFlight -= count }
    }

    /// Hands over committed deliveries whose room was reserved.
    func hand(_ deliveries: [Delivery]) {
        guard !deliveries.isEmpty else { return }
        update { $0.handed += deliveries }
    }

    /// Due deliveries may be waiting in the store (a checkpoint created some, a retry was asked
    /// for, the retry time of one may have come).
    func ring() {
        update { $0.storeHasWork = true }
    }

    /// An attempt ended: its room is free again.
    func finished() {
        update { $0.inFlight -= 1 }
    }

    /// Starts taking deliveries (after the worker took back what a previous process left sending).
    func open() {
        update { $0.open = true }
    }

    /// Stops taking deliveries; the worker's next ``next()`` returns `closed`.
    func close() {
        update {
            $0.open = false
            $0.closed = true
        }
    }

    /// Waits until there is something to do.
    func next() async -> Work {
        await withCheckedContinuation { continuation in
            let ready: Work? = state.withLock { state in
                if let work = Self.take(&state, capacity: capacity, claimBatch: claimBatch) { return work }
                state.waiter = continuation
                return nil
            }
            if let ready { continuation.resume(returning: ready) }
        }
    }

    /// Changes the state, then wakes the worker if it waits and now has something to do.
    private func update(_ change: (inout State) -> Void) {
        let (waiter, work): (CheckedContinuation<Work, Never>?, Work?) = state.withLock { state in
            change(&state)
            guard let waiter = state.waiter, let work = Self.take(&state, capacity: capacity, claimBatch: claimBatch) else {
                return (nil, nil)
            }
            state.waiter = nil
            return (waiter, work)
        }
        if let waiter, let work { waiter.resume(returning: work) }
    }

    /// The work there is, taken out of the state; nil when there is none. Room for a claim is
    /// reserved here; the worker releases what the claim did not fill.
    private static func take(_ state: inout State, capacity: Int, claimBatch: Int) -> Work? {
        if state.closed { return Work(handed: [], claimRoom: 0, closed: true) }
        let room = state.storeHasWork ? min(claimBatch, capacity - state.inFlight) : 0
        guard !state.handed.isEmpty || room > 0 else { return nil }
        let handed = state.handed
        state.handed = []
        if room > 0 {
            state.storeHasWork = false
            state.inFlight += room
        }
        return Work(handed: handed, claimRoom: room, closed: false)
    }

    /// Whether the worker is stopping: attempts still waiting for their connector's turn give up
    /// (their deliveries stay due, for the next start) instead of holding the stop up.
    var isClosed: Bool { state.withLock { $0.closed } }

    /// The number of deliveries in flight (for tests and metrics).
    var inFlight: Int { state.withLock { $0.inFlight } }
}
