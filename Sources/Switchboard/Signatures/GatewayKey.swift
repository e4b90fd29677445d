import Crypto
import Foundation

/// The gateway's own key (`SWITCHBOARD_SECRET_KEY`), for values it hands out and must
/// recognise later, such as a Slack button's reference to its run and step.
///
/// When the variable is unset, a random key is generated on first start and kept beside the
/// SQLite file (`secret.key`, readable by its owner only), or in the PostgreSQL database that
/// instances share (every instance then signs with the first one's key), so that buttons still
/// work after a restart and on any instance.
public struct GatewayKey: Sendable, CustomStringConvertible {
    let key: SymmetricKey

    public init(_ text: String) {
        key = SymmetricKey(data: SHA256.hash(data: Data(text.utf8)))
    }

    /// A random key that lives as long as the process (tests).
    public static func ephemeral() -> GatewayKey {
        GatewayKey(SymmetricKey(size: .bits256).withUnsafeBytes { Data($0).base64EncodedString() })
    }

    /// `SWITCHBOARD_SECRET_KEY`, or the key file in `folder`, created when missing.
    public static func load(environment: [String: String], folder: String?) throws -> GatewayKey {
        if let text = environment["SWITCHBOARD_SECRET_KEY"], !text.isEmpty { return GatewayKey(text) }
        guard let folder else { return ephemeral() }
        let path = (folder as NSString).appendingPathComponent("secret.key")
        if let text = try? String(contentsOfFile: path, encoding: .utf8), !text.isEmpty {
            return GatewayKey(text.trimmingCharacters(in: .whitespacesAndNewlines))
        }
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        let text = SymmetricKey(size: .bits256).withUnsafeBytes { Data($0).base64EncodedString() }
        guard FileManager.default.createFile(atPath: path, contents: Data((text + "\n").utf8),
                                             attributes: [.posixPermissions: 0o600]) else {
            throw CocoaError(.fileWriteNoPermission, userInfo: [NSFilePathErrorKey: path])
        }
        return GatewayKey(text)
    }

    /// The key instances sharing a database keep in it (``SharedLimits``): the first to start
    /// generates it, every other reads it.
    public static func shared(in limits: any SharedLimits) async throws -> GatewayKey {
        if let kept = try await limits.sharedValue(sharedName) { return GatewayKey(kept.text) }
        let text = SymmetricKey(size: .bits256).withUnsafeBytes { Data($0).base64EncodedString() }
        if try await limits.replaceSharedValue(sharedName, with: text, expecting: nil) { return GatewayKey(text) }
        // Another instance generated one first: that is the key.
        guard let kept = try await limits.sharedValue(sharedName) else {
            throw StoreError.unavailable("the gateway key was written by another instance but cannot be read")
        }
        return GatewayKey(kept.text)
    }

    static let sharedName = "gateway_key"

    /// HMAC-SHA256 of `message`, as lowercase hex.
    public func sign(_ message: String) -> String {
        Hex.encode(HMAC<SHA256>.authenticationCode(for: Data(message.utf8), using: key))
    }

    /// Whether `signature` is ``sign(_:)`` of `message`, compared in constant time.
    public func verify(_ message: String, signature: String) -> Bool {
        guard let given = InboundVerifier.hexBytes(Substring(signature)) else { return false }
        return constantTimeEquals(Array(HMAC<SHA256>.authenticationCode(for: Data(message.utf8), using: key)), given)
    }

    public var description: String { "GatewayKey(••••)" }
}
