import Foundation
import Logging
import Synchronization

/// Writes log lines to standard error, one per line:
/// `2026-11-27T00:40:34Z warning switchboard: delivery_id=dlv_… [Switchboard] message`.
///
/// Like swift-log's `StreamLogHandler`, but metadata is rendered only for the lines that are
/// written. `StreamLogHandler` renders its whole metadata every time a key is set, and Hummingbird
/// sets a request id on every request's logger: ~1 % of the gateway's CPU when forwarding, for
/// debug lines that were never written.
public struct GatewayLogHandler: LogHandler {
    public var logLevel: Logger.Level
    public var metadata: Logger.Metadata = [:]
    public var metadataProvider: Logger.MetadataProvider?
    private let label: String
    private let write: @Sendable (String) -> Void

    /// Lines from concurrent tasks are not interleaved.
    private static let output = Mutex(())

    /// - Parameter write: where finished lines go (standard error unless a test collects them).
    public init(label: String, level: Logger.Level, metadataProvider: Logger.MetadataProvider? = nil,
                write: @escaping @Sendable (String) -> Void = GatewayLogHandler.standardError)
    {
        self.label = label
        logLevel = level
        self.metadataProvider = metadataProvider
        self.write = write
    }

    public static let standardError: @Sendable (String) -> Void = { text in
        output.withLock { _ in FileHandle.standardError.write(Data(text.utf8)) }
    }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    /// Writes the event's line, with `error=` when it carries an error and its metadata names none.
    public func log(event: LogEvent) {
        var all = metadata
        if let provided = metadataProvider?.get() { all.merge(provided) { _, new in new } }
        if let explicit = event.metadata { all.merge(explicit) { _, new in new } }
        if let error = event.error, all["error"] == nil { all["error"] = "\(error)" }
        let rendered = all.isEmpty ? "" : " " + all.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: " ")
        let text = "\(Date().formatted(.iso8601)) \(event.level) \(label):\(rendered) [\(event.source)] \(event.message)\n"
        write(text)
    }
}
