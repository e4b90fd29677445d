import CEL
import Foundation
import Synchronization

/// The parsed payloads of the most recently ingested events, by event id.
///
/// A run refers to its event rather than copying it, and every advance of the run needs it
/// parsed. Events never change once stored, so a parsed copy kept here is always right; a run
/// whose event was forgotten reads and parses it from the store as before. Bounded: the oldest
/// entry goes first.
final class RecentEvents: Sendable {
    private struct State {
        var payloads: [String: JSON] = [:]
        /// Ids in the order they were remembered, oldest first, from `start` on.
        var order: [String] = []
        var start = 0
    }

    let capacity: Int
    private let state = Mutex(State())

    init(capacity: Int = 4096) {
        self.capacity = capacity
    }

    func remember(_ id: EventID, _ payload: JSON) {
        state.withLock { state in
            guard state.payloads.updateValue(payload, forKey: id.rawValue) == nil else { return }
            state.order.append(id.rawValue)
            if state.payloads.count > capacity {
                state.payloads[state.order[state.start]] = nil
                state.start += 1
                // Compact now and then, so that the order array stays about `capacity` long.
                if state.start >= capacity {
                    state.order.removeFirst(state.start)
                    state.start = 0
                }
            }
        }
    }

    func payload(_ id: String) -> JSON? {
        state.withLock { $0.payloads[id] }
    }

    var count: Int { state.withLock { $0.payloads.count } }
}
