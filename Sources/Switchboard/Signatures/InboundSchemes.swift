import CEL
import Crypto
import Foundation

/// The ways a connector's inbound callbacks are signed (docs/signatures.md).
public enum InboundScheme: Sendable {
    /// Standard Webhooks: `webhook-id`, `webhook-timestamp`, `webhook-signature: v1,<base64>`.
    case standardWebhooks
    /// Slack: `X-Slack-Signature: v0=<hex>` over `v0:<timestamp>:<body>`, `X-Slack-Request-Timestamp`.
    case slackV0
    /// Stripe and Persona style: `<header>: t=<ts>,v1=<hex>` over `<ts>.<body>`.
    case timestampedHMAC(header: String)
    /// `<header>: [sha256=]<hex>` over the body, with no timestamp.
    case hmacSHA256(header: String)
}

/// Verifies inbound requests under one scheme with one or more secrets (rotation).
public struct InboundVerifier: Sendable {
    public let scheme: InboundScheme
    public let secrets: [SigningSecret]
    public var tolerance: TimeInterval = 300

    public init(scheme: InboundScheme, secrets: [SigningSecret]) {
        self.scheme = scheme
        self.secrets = secrets
    }

    /// Reads a verifier from a connector's settings: `scheme`, `secret` or `secrets`, `header` (for
    /// `hmac-sha256` and `timestamped-hmac`) and `tolerance`. Errors name the key under `key`.
    public init(settings fields: [String: JSON], key: String) throws(ConnectorError) {
        let prefix = key.isEmpty ? "" : key + "."
        let header = fields["header"]?.stringValue
        let scheme: InboundScheme
        switch fields["scheme"]?.stringValue {
        case "standard-webhooks": scheme = .standardWebhooks
        case "slack-v0": scheme = .slackV0
        case "hmac-sha256":
            guard let header else { throw ConnectorError(key: prefix + "header", "hmac-sha256 needs the header that carries the signature") }
            scheme = .hmacSHA256(header: header)
        case "timestamped-hmac":
            guard let header else { throw ConnectorError(key: prefix + "header", "timestamped-hmac needs the header that carries the signature") }
            scheme = .timestampedHMAC(header: header)
        case let other:
            throw ConnectorError(key: prefix + "scheme",
                                 "'\(other ?? "")' is not a scheme; expected standard-webhooks, hmac-sha256, timestamped-hmac or slack-v0")
        }
        var texts: [String] = []
        if let secret = fields["secret"]?.stringValue { texts.append(secret) }
        if case let .array(list)? = fields["secrets"] { texts += list.compactMap(\.stringValue) }
        guard !texts.isEmpty else { throw ConnectorError(key: prefix + "secret", "give secret: ... or secrets: [...]") }
        var secrets: [SigningSecret] = []
        for text in texts {
            do { secrets.append(try SigningSecret(text)) } catch { throw ConnectorError(key: prefix + "secret", error.message) }
        }
        self.init(scheme: scheme, secrets: secrets)
        if let text = fields["tolerance"]?.stringValue {
            guard let tolerance = ConfigDuration.parse(text) else { throw ConnectorError(key: prefix + "tolerance", "'\(text)' is not a duration") }
            self.tolerance = tolerance.timeInterval
        }
    }

    /// Checks the signature (constant time) and the timestamp; returns a message id when the
    /// scheme has one, for replay protection.
    public func verify(headers: (String) -> String?, body: [UInt8], now: Date) throws(SignatureError) -> String? {
        switch scheme {
        case .standardWebhooks:
            var standard = StandardWebhooks(secrets: secrets)
            standard.tolerance = tolerance
            return try standard.verify(headers: headers, body: body, now: now)
        case .slackV0:
            guard let timestampText = headers("x-slack-request-timestamp") else {
                throw SignatureError(.missingHeader, "missing X-Slack-Request-Timestamp")
            }
            guard let signature = headers("x-slack-signature") else { throw SignatureError(.missingHeader, "missing X-Slack-Signature") }
            let timestamp = try checkedTimestamp(timestampText, now: now)
            guard signature.hasPrefix("v0="), let given = Self.hexBytes(signature.dropFirst(3)) else {
                throw SignatureError(.malformedHeader, "X-Slack-Signature must be v0=<hex>")
            }
            try match(given, prefix: Array("v0:\(timestamp):".utf8), body: body)
            return nil
        case let .timestampedHMAC(header):
            guard let value = headers(header.lowercased()) else { throw SignatureError(.missingHeader, "missing \(header)") }
            var timestampText: Substring?
            var signatures: [[UInt8]] = []
            for part in value.split(separator: ",") {
                let pair = part.split(separator: "=", maxSplits: 1)
                guard pair.count == 2 else { continue }
                let key = pair[0].trimmingCharacters(in: .whitespaces)
                if key == "t" { timestampText = pair[1] }
                if key == "v1", let bytes = Self.hexBytes(pair[1]) { signatures.append(bytes) }
            }
            guard let timestampText else { throw SignatureError(.malformedHeader, "\(header) has no t=<timestamp>") }
            let timestamp = try checkedTimestamp(String(timestampText), now: now)
            guard !signatures.isEmpty else { throw SignatureError(.malformedHeader, "\(header) has no v1=<hex>") }
            let prefix = Array("\(timestamp).".utf8)
            for signature in signatures {
                if (try? match(signature, prefix: prefix, body: body)) != nil { return nil }
            }
            throw SignatureError(.mismatch, "no signature matches")
        case let .hmacSHA256(header):
            guard var value = headers(header.lowercased()) else { throw SignatureError(.missingHeader, "missing \(header)") }
            if value.hasPrefix("sha256=") { value.removeFirst(7) }
            guard let given = Self.hexBytes(Substring(value)) else { throw SignatureError(.malformedHeader, "\(header) must be hex") }
            try match(given, prefix: [], body: body)
            return nil
        }
    }

    private func checkedTimestamp(_ text: String, now: Date) throws(SignatureError) -> Int64 {
        guard let timestamp = Int64(text.trimmingCharacters(in: .whitespaces)) else {
            throw SignatureError(.malformedHeader, "the timestamp must be whole seconds since the epoch")
        }
        guard abs(now.timeIntervalSince1970 - Double(timestamp)) <= tolerance else {
            throw SignatureError(.timestampOutOfTolerance, "the timestamp is more than \(Int(tolerance)) s from now")
        }
        return timestamp
    }

    private func match(_ given: [UInt8], prefix: [UInt8], body: [UInt8]) throws(SignatureError) {
        for secret in secrets where constantTimeEquals(secret.hmac(prefix, body), given) { return }
        throw SignatureError(.mismatch, "no signature matches")
    }

    static func hexBytes(_ text: Substring) -> [UInt8]? {
        let characters = Array(text.utf8)
        guard characters.count % 2 == 0, !characters.isEmpty else { return nil }
        var bytes: [UInt8] = []
        bytes.reserveCapacity(characters.count / 2)
        var index = 0
        while index < characters.count {
            guard let high = nibble(characters[index]), let low = nibble(characters[index + 1]) else { return nil }
            bytes.append(high << 4 | low)
            index += 2
        }
        return bytes
    }

    private static func nibble(_ c: UInt8) -> UInt8? {
        switch c {
        case 48 ... 57: c - 48
        case 97 ... 102: c - 87
        case 65 ... 70: c - 55
        default: nil
        }
    }

    /// Signs as a sender of this scheme would (for the sandbox and tests).
    public static func sign(_ scheme: InboundScheme, secret: SigningSecret, body: [UInt8], timestamp: Int64) -> [(String, String)] {
        switch scheme {
        case .standardWebhooks:
            return StandardWebhooks(secrets: [secret]).headers(id: "msg_\(timestamp)", timestamp: timestamp, body: body)
        case .slackV0:
            return [("X-Slack-Request-Timestamp", String(timestamp)),
                    ("X-Slack-Signature", "v0=" + Hex.encode(secret.hmac(Array("v0:\(timestamp):".utf8), body)))]
        case let .timestampedHMAC(header):
            return [(header, "t=\(timestamp),v1=" + Hex.encode(secret.hmac(Array("\(timestamp).".utf8), body)))]
        case let .hmacSHA256(header):
            return [(header, Hex.encode(secret.hmac([], body)))]
        }
    }
}
