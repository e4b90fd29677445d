import Foundation
import Testing
@testable import Switchboard

@Suite("The gateway's own key")
struct GatewayKeyTests {
    @Test("generated once beside the database, readable by its owner only, and kept across restarts; the variable wins")
    func keptBesideTheDatabase() throws {
        let directory = try TemporaryDirectory()
        let first = try GatewayKey.load(environment: [:], folder: directory.path)
        let path = directory.file("secret.key")
        let permissions = try FileManager.default.attributesOfItem(atPath: path)[.posixPermissions] as? Int
        #expect(permissions == 0o600)
        let second = try GatewayKey.load(environment: [:], folder: directory.path)
        #expect(second.sign("x") == first.sign("x"), "a restart reads the same key")
        let configured = try GatewayKey.load(environment: ["SWITCHBOARD_SECRET_KEY": "from-env"], folder: directory.path)
        #expect(configured.sign("x") == GatewayKey("from-env").sign("x"))
        #expect(configured.sign("x") != first.sign("x"))
        #expect("\(first)" == "GatewayKey(••••)")
    }

    @Test("a Slack button value verifies only unchanged, and only with the key that signed it")
    func buttonValues() {
        let key = GatewayKey("k")
        let reference = SlackReviewMessage.Reference(run: RunID("run_1"), step: "alert.v2")
        let value = SlackReviewMessage.value(reference, decision: "approve", key: key)
        let parsed = SlackReviewMessage.parse(value: value, key: key)
        #expect(parsed?.0 == reference && parsed?.decision == "approve")
        #expect(SlackReviewMessage.parse(value: value, key: GatewayKey("other")) == nil)
        #expect(SlackReviewMessage.parse(value: value.replacingOccurrences(of: "run_1", with: "run_2"), key: key) == nil)
        #expect(SlackReviewMessage.parse(value: value.replacingOccurrences(of: ".approve.", with: ".decline."), key: key) == nil)
        #expect(SlackReviewMessage.parse(value: "garbage", key: key) == nil)
    }
}
