import Crypto
import Foundation

/// A shared secret for HMAC signatures. Standard Webhooks secrets are written `whsec_<base64>`;
/// any other text is used as its UTF-8 bytes. `description` never shows the key.
public struct SigningSecret: Sendable, CustomStringConvertible {
    let key: SymmetricKey
    /// HMAC-SHA256 keyed once: each message starts from a copy of it (the hash state is copied
    /// on write), not from the key again.
    private let keyed: HMAC<SHA256>

    public init(_ text: String) throws(SignatureError) {
        if text.hasPrefix("whsec_") {
            guard let bytes = Data(base64Encoded: String(text.dropFirst(6))), !bytes.isEmpty else {
                throw SignatureError(.malformedSecret, "a whsec_ secret must be followed by base64")
            }
            key = SymmetricKey(data: bytes)
        } else {
            guard !text.isEmpty else { throw SignatureError(.malformedSecret, "the secret is empty") }
            key = SymmetricKey(data: Data(text.utf8))
        }
        keyed = HMAC<SHA256>(key: key)
    }

    /// A new random `whsec_` secret (24 bytes).
    public static func generateText() -> String {
        "whsec_" + Data(SymmetricKey(size: .init(bitCount: 192)).withUnsafeBytes { Array($0) }).base64EncodedString()
    }

    public var description: String { "SigningSecret(••••)" }

    /// The HMAC of `prefix` followed by `body` (every scheme signs a prefix and the body), without
    /// joining them first.
    func hmac(_ prefix: [UInt8], _ body: some Collection<UInt8>) -> [UInt8] {
        var mac = keyed
        mac.update(data: prefix)
        if body.withContiguousStorageIfAvailable({ mac.update(data: UnsafeRawBufferPointer($0)) }) == nil {
            mac.update(data: Array(body))
        }
        return Array(mac.finalize())
    }
}

/// Why a signature was refused. The message never contains a secret or the expected signature.
public struct SignatureError: Error, Hashable, Sendable, CustomStringConvertible {
    public enum Code: String, Sendable {
        case missingHeader = "missing_header"
        case malformedHeader = "malformed_header"
        case timestampOutOfTolerance = "timestamp_out_of_tolerance"
        case mismatch = "signature_mismatch"
        case replayed
        case malformedSecret = "malformed_secret"
    }

    public let code: Code
    public let message: String

    public init(_ code: Code, _ message: String) {
        self.code = code
        self.message = message
    }

    public var description: String { "\(code.rawValue): \(message)" }
}

/// Constant-time comparison of two byte strings.
func constantTimeEquals(_ a: [UInt8], _ b: [UInt8]) -> Bool {
    guard a.count == b.count else { return false }
    var difference: UInt8 = 0
    for index in a.indices { difference |= a[index] ^ b[index] }
    return difference == 0
}

/// The Standard Webhooks scheme: `webhook-id`, `webhook-timestamp`, and
/// `webhook-signature: v1,<base64 HMAC-SHA256 of id.timestamp.body>`, one signature per secret.
public struct StandardWebhooks: Sendable {
    public static let idHeader = "webhook-id"
    public static let timestampHeader = "webhook-timestamp"
    public static let signatureHeader = "webhook-signature"

    public let secrets: [SigningSecret]
    /// How far a timestamp may be from now, either way, when verifying.
    public var tolerance: TimeInterval = 300

    public init(secrets: [SigningSecret]) {
        self.secrets = secrets
    }

    /// The signature header value: `v1,<sig>` for each secret, separated by spaces.
    public func signature(id: String, timestamp: Int64, body: some Collection<UInt8>) -> String {
        let prefix = Array("\(id).\(timestamp).".utf8)
        return secrets.map { "v1," + Data($0.hmac(prefix, body)).base64EncodedString() }.joined(separator: " ")
    }

    /// The three headers to send.
    public func headers(id: String, timestamp: Int64, body: some Collection<UInt8>) -> [(String, String)] {
        [(Self.idHeader, id), (Self.timestampHeader, String(timestamp)),
         (Self.signatureHeader, signature(id: id, timestamp: timestamp, body: body))]
    }

    /// Verifies a message; returns its id. Any one valid signature from any secret is enough.
    public func verify(headers: (String) -> String?, body: some Collection<UInt8>, now: Date) throws(SignatureError) -> String {
        guard let id = headers(Self.idHeader) else { throw SignatureError(.missingHeader, "missing \(Self.idHeader)") }
        guard let timestampText = headers(Self.timestampHeader) else {
            throw SignatureError(.missingHeader, "missing \(Self.timestampHeader)")
        }
        guard let signatures = headers(Self.signatureHeader) else {
            throw SignatureError(.missingHeader, "missing \(Self.signatureHeader)")
        }
        guard let timestamp = Int64(timestampText) else {
            throw SignatureError(.malformedHeader, "\(Self.timestampHeader) must be whole seconds since the epoch")
        }
        guard abs(now.timeIntervalSince1970 - Double(timestamp)) <= tolerance else {
            throw SignatureError(.timestampOutOfTolerance, "the timestamp is more than \(Int(tolerance)) s from now")
        }
        let prefix = Array("\(id).\(timestamp).".utf8)
        let expected = secrets.map { $0.hmac(prefix, body) }
        for candidate in signatures.split(separator: " ") {
            let parts = candidate.split(separator: ",", maxSplits: 1)
            guard parts.count == 2, parts[0] == "v1", let bytes = Data(base64Encoded: String(parts[1])) else { continue }
            if expected.contains(where: { constantTimeEquals($0, Array(bytes)) }) { return id }
        }
        throw SignatureError(.mismatch, "no signature matches")
    }
}
