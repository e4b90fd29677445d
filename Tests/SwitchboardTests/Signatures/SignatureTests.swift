import Foundation
import Testing
@testable import Switchboard

@Suite("Signatures")
struct SignatureTests {
    // The test vector published with the Standard Webhooks specification.
    static let vectorSecret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
    static let vectorID = "msg_p5jXN8AQM9LWM0D4loKWxJek"
    static let vectorTimestamp: Int64 = 1_614_265_330
    static let vectorBody = Array(#"{"test": 2432232314}"#.utf8)
    static let vectorSignature = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="

    @Test("Standard Webhooks: the published test vector signs and verifies")
    func vector() throws {
        let scheme = StandardWebhooks(secrets: [try SigningSecret(Self.vectorSecret)])
        #expect(scheme.signature(id: Self.vectorID, timestamp: Self.vectorTimestamp, body: Self.vectorBody) == Self.vectorSignature)
        let headers = [StandardWebhooks.idHeader: Self.vectorID, StandardWebhooks.timestampHeader: "1614265330",
                       StandardWebhooks.signatureHeader: Self.vectorSignature]
        let now = Date(timeIntervalSince1970: 1_614_265_330)
        #expect(try scheme.verify(headers: { headers[$0] }, body: Self.vectorBody, now: now) == Self.vectorID)
        #expect(throws: SignatureError.self) {
            try scheme.verify(headers: { headers[$0] }, body: Self.vectorBody + [32], now: now)
        }
        let late = now.addingTimeInterval(301)
        do {
            _ = try scheme.verify(headers: { headers[$0] }, body: Self.vectorBody, now: late)
            Issue.record("a stale timestamp verified")
        } catch { #expect(error.code == .timestampOutOfTolerance) }
    }

    @Test("rotation: one signature per secret, and any valid one verifies")
    func rotation() throws {
        let old = try SigningSecret(SigningSecret.generateText())
        let new = try SigningSecret(SigningSecret.generateText())
        let both = StandardWebhooks(secrets: [old, new])
        let signature = both.signature(id: "m", timestamp: 100, body: [1, 2, 3])
        #expect(signature.split(separator: " ").count == 2)
        let headers = ["webhook-id": "m", "webhook-timestamp": "100", "webhook-signature": signature]
        let now = Date(timeIntervalSince1970: 100)
        #expect(try StandardWebhooks(secrets: [new]).verify(headers: { headers[$0] }, body: [1, 2, 3], now: now) == "m")
        #expect(try StandardWebhooks(secrets: [old]).verify(headers: { headers[$0] }, body: [1, 2, 3], now: now) == "m")
    }

    @Test("a signature we make verifies with the Python standardwebhooks package")
    func pythonVerifier() async throws {
        let secretText = SigningSecret.generateText()
        let body = #"{"type":"inquiry.completed","data":{"id":"inq_1","name":"Zoë"}}"#
        let now = Int64(Date().timeIntervalSince1970)
        let signature = StandardWebhooks(secrets: [try SigningSecret(secretText)]).signature(id: "dlv_1", timestamp: now, body: Array(body.utf8))
        let script = """
            import sys, standardwebhooks
            wh = standardwebhooks.Webhook(sys.argv[1])
            wh.verify(sys.argv[2].encode(), {"webhook-id": "dlv_1", "webhook-timestamp": sys.argv[3], "webhook-signature": sys.argv[4]})
            print("verified")
            """
        let (status, output) = try await Self.python(script, secretText, body, String(now), signature)
        #expect(status == 0, "python standardwebhooks: \(output) (scripts/install-dependencies installs it)")
        #expect(output.contains("verified"))
    }

    @Test("Slack v0: the Slack SDK's verifier accepts what the sandbox signs, and we accept what the SDK signs")
    func slackSDK() async throws {
        let secret = "sandbox-signing-secret"
        let body = FormEncoding.encode([("payload", #"{"type":"block_actions","user":{"username":"zoë"}}"#)])
        let now = Int64(Date().timeIntervalSince1970)
        let ours = InboundVerifier.sign(.slackV0, secret: try SigningSecret(secret), body: Array(body.utf8), timestamp: now)
        let signature = try #require(ours.first { $0.0 == "X-Slack-Signature" }?.1)
        let script = """
            import sys
            from slack_sdk.signature import SignatureVerifier
            verifier = SignatureVerifier(sys.argv[1])
            assert verifier.is_valid(body=sys.argv[2], timestamp=sys.argv[3], signature=sys.argv[4]), "our signature was refused"
            print(verifier.generate_signature(timestamp=sys.argv[3], body=sys.argv[2]))
            """
        let (status, output) = try await Self.python(script, secret, body, String(now), signature)
        #expect(status == 0, "python slack_sdk: \(output) (scripts/install-dependencies installs it)")
        let theirs = output.trimmingCharacters(in: .whitespacesAndNewlines)
        let headers = ["x-slack-request-timestamp": String(now), "x-slack-signature": theirs]
        let verifier = InboundVerifier(scheme: .slackV0, secrets: [try SigningSecret(secret)])
        #expect(throws: Never.self) { _ = try verifier.verify(headers: { headers[$0] }, body: Array(body.utf8), now: Date()) }
    }

    @Test("slack v0, timestamped HMAC and plain HMAC verify what their senders sign", arguments: [
        InboundScheme.slackV0, .timestampedHMAC(header: "Persona-Signature"), .hmacSHA256(header: "X-Middesk-Signature-256"),
        .standardWebhooks,
    ])
    func inbound(_ scheme: InboundScheme) throws {
        let secret = try SigningSecret("shared-secret")
        let other = try SigningSecret("another-secret")
        let body = Array("payload=%7B%22a%22%3A1%7D".utf8)
        let now = Date(timeIntervalSince1970: 1_700_000_000)
        let signed = InboundVerifier.sign(scheme, secret: secret, body: body, timestamp: 1_700_000_000)
        let headers = Dictionary(uniqueKeysWithValues: signed.map { ($0.0.lowercased(), $0.1) })
        _ = try InboundVerifier(scheme: scheme, secrets: [other, secret]).verify(headers: { headers[$0] }, body: body, now: now)
        #expect(throws: SignatureError.self) {
            try InboundVerifier(scheme: scheme, secrets: [other]).verify(headers: { headers[$0] }, body: body, now: now)
        }
        #expect(throws: SignatureError.self) {
            try InboundVerifier(scheme: scheme, secrets: [secret]).verify(headers: { headers[$0] }, body: body + [33], now: now)
        }
    }

    @Test("a secret never shows in descriptions")
    func redaction() throws {
        let secret = try SigningSecret("whsec_c2VjcmV0LXZhbHVl")
        #expect(!"\(secret)".contains("c2Vj"))
        #expect(throws: SignatureError.self) { try SigningSecret("whsec_!!!") }
    }

    /// Runs a Python script with arguments; returns its exit status and its output (stdout and stderr).
    static func python(_ script: String, _ arguments: String...) async throws -> (Int32, String) {
        try await offThePool { try pythonBlocking(script, arguments) }
    }

    /// The virtual environment `scripts/install-dependencies` makes, or `SWITCHBOARD_TEST_PYTHON`.
    static let interpreter: String = ProcessInfo.processInfo.environment["SWITCHBOARD_TEST_PYTHON"]
        ?? Repository.root.appendingPathComponent(".build/python/bin/python").path

    private static func pythonBlocking(_ script: String, _ arguments: [String]) throws -> (Int32, String) {
        guard FileManager.default.isExecutableFile(atPath: interpreter) else {
            return (127, "no Python at \(interpreter): run scripts/install-dependencies, which makes it")
        }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: interpreter)
        process.arguments = ["-c", script] + arguments
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = pipe
        try process.run()
        process.waitUntilExit()
        return (process.terminationStatus, String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self))
    }
}
