import CEL
import Foundation
import Synchronization

/// The parsed payloads of the most recently ingested events, with their text, by event id.
///
/// A run refers to its event rather than copying it, and every advance of the run needs it
/// parsed. Events never change once stored, so a parsed copy kept here is always right; a run
/// whose event was forgotten reads and parses it from the store as before. Bounded: the oldest
/// entry goes first.
final class RecentEvents: Sendable {
    private let memory: Mutex<BoundedMemory<String, (payload: JSON, text: String)>>

    init(capacity: Int = 4096) {
        memory = Mutex(BoundedMemory(capacity: capacity))
    }

    func remember(_ id: EventID, _ payload: JSON, text: String) {
        memory.withLock { $0.store((payload, text), for: id.rawValue) }
    }

    /// The event's parsed payload and its text, if remembered.
    func event(_ id: String) -> (payload: JSON, text: String)? {
        memory.withLock { $0[id] }
    }

    var count: Int { memory.withLock { $0.count } }
}
