import Logging
import Synchronization
import Testing
@testable import Switchboard

@Suite("Log handler")
struct LogHandlerTests {
    final class Lines: Sendable {
        let all = Mutex<[String]>([])
    }

    @Test("a line carries level, label, sorted metadata (set, provided and explicit) and the message; lines below the level are not written")
    func lines() {
        let lines = Lines()
        let provider = Logger.MetadataProvider { ["trace_id": "t1"] }
        var logger = Logger(label: "switchboard") { label in
            GatewayLogHandler(label: label, level: .info, metadataProvider: provider) { text in lines.all.withLock { $0.append(text) } }
        }
        logger[metadataKey: "hb.request.id"] = "r-1"
        logger.debug("not written")
        logger.warning("delivery failed", metadata: ["delivery_id": "dlv_1", "trace_id": "t2"])
        let written = lines.all.withLock { $0 }
        #expect(written.count == 1)
        let line = written.first ?? ""
        #expect(line.hasSuffix(" warning switchboard: delivery_id=dlv_1 hb.request.id=r-1 trace_id=t2 [SwitchboardTests] delivery failed\n"),
                "\(line)")
        #expect(line.hasPrefix("20"), "starts with the time: \(line)")
    }
}
