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

    struct Refused: Error, CustomStringConvertible {
        var description: String { "the receiver refused" }
    }

    @Test("an error given with the line is written as error=, unless the metadata names one")
    func errorOfTheEvent() {
        let lines = Lines()
        let handler = GatewayLogHandler(label: "switchboard", level: .info) { text in lines.all.withLock { $0.append(text) } }
        handler.log(event: LogEvent(level: .error, message: "delivery failed", error: Refused(), metadata: ["delivery_id": "dlv_1"],
                                    source: "Switchboard", file: #fileID, function: #function, line: #line))
        handler.log(event: LogEvent(level: .error, message: "again", error: Refused(), metadata: ["error": "named"],
                                    source: "Switchboard", file: #fileID, function: #function, line: #line))
        let written = lines.all.withLock { $0 }
        #expect(written.count == 2)
        #expect(written.first?.hasSuffix(" error switchboard: delivery_id=dlv_1 error=the receiver refused [Switchboard] delivery failed\n") == true,
                "\(written)")
        #expect(written.last?.hasSuffix(" error switchboard: error=named [Switchboard] again\n") == true, "\(written)")
    }
}
