import CEL
import Foundation
import HTTPTypes
import NIOCore
import Testing
@testable import Switchboard

/// POST /v1/events in the three modes of the CloudEvents HTTP binding, checked against the
/// CloudEvents Python SDK (`cloudevents` on PyPI): events it writes — JSON, text and binary data,
/// an extension attribute — are accepted in each mode and read back as the SDK wrote them.
@Suite("CloudEvents: structured, binary and batched modes against the Python SDK", .timeLimit(.minutes(2)))
struct CloudEventModesTests {
    static let script = """
        import json, base64, datetime
        from cloudevents.core.v1.event import CloudEvent
        from cloudevents.core.bindings import http
        from cloudevents.core.formats.json import JSONFormat
        when = datetime.datetime(2026, 12, 4, 9, 30, 15, tzinfo=datetime.timezone.utc)
        def events(mode):
            return [
                CloudEvent(attributes={"type": "com.example.sdk", "source": "/sdk/python", "id": "json-" + mode, "subject": "inq_1",
                                       "time": when, "datacontenttype": "application/json", "tenant": "acme"},
                           data={"inquiry": {"id": "inq_1", "name": "Zoë", "score": 0.93, "tags": ["a", "b"]}}),
                CloudEvent(attributes={"type": "com.example.sdk", "source": "/sdk/python", "id": "text-" + mode,
                                       "datacontenttype": "text/plain"}, data="plain text, with a comma; and ünïcode"),
                CloudEvent(attributes={"type": "com.example.sdk", "source": "/sdk/python", "id": "bytes-" + mode,
                                       "datacontenttype": "application/octet-stream"}, data=bytes([0, 1, 2, 250, 255])),
            ]
        fmt = JSONFormat()
        out = {"binary": [], "structured": [], "batch": None, "canonical": {}}
        for e in events("binary"):
            message = http.to_binary_event(e)
            out["binary"].append({"headers": dict(message.headers), "body": base64.b64encode(message.body).decode()})
            out["canonical"][e.get_id()] = json.loads(fmt.write(e))
        for e in events("structured"):
            message = http.to_structured_event(e)
            out["structured"].append({"headers": dict(message.headers), "body": message.body.decode()})
            out["canonical"][e.get_id()] = json.loads(fmt.write(e))
        batch = events("batch")
        out["batch"] = "[" + ",".join(fmt.write(e).decode() for e in batch) + "]"
        for e in batch:
            out["canonical"][e.get_id()] = json.loads(fmt.write(e))
        print(json.dumps(out))
        """

    @Test("events the SDK writes in binary, structured and batched mode are ingested and stored as the SDK wrote them")
    func sdkModes() async throws {
        let (status, output) = try await SignatureTests.python(Self.script)
        try #require(status == 0, "python cloudevents: \(output) (scripts/install-dependencies installs it)")
        let written = try JSON.parse(output)
        let directory = try TemporaryDirectory()
        try directory.write("workflows/sdk.yaml", """
            id: sdk
            trigger: { event: com.example.sdk }
            steps:
              - { id: mark, action: tag, with: { tag: "sdk" } }
            """)
        let gateway = try await TestGateway(configurationDirectory: directory.path)
        try await gateway.test { api in
            func fields(_ headers: JSON) -> HTTPFields {
                var fields = HTTPFields()
                if case let .object(members) = headers {
                    for (name, value) in members { fields[HTTPField.Name(name)!] = value.stringValue }
                }
                return fields
            }
            for message in written["binary"]?.array ?? [] {
                let body = try #require(Data(base64Encoded: message["body"]?.stringValue ?? ""))
                var headers = fields(message["headers"] ?? .null)
                headers[.authorization] = "Bearer \(api.apiKey)"
                let reply = try await api.client.execute(uri: "/v1/events", method: .post, headers: headers,
                                                         body: ByteBuffer(bytes: Array(body))) { response in response.status }
                #expect(reply == .accepted, "binary mode: \(message["headers"]?.text ?? "")")
            }
            for message in written["structured"]?.array ?? [] {
                let reply = try await api.request(.post, "/v1/events", body: message["body"]?.stringValue,
                                                  headers: fields(message["headers"] ?? .null))
                #expect(reply.status == .accepted, "structured mode: \(reply.body)")
            }
            let batch = try await api.request(.post, "/v1/events", body: written["batch"]?.stringValue,
                                              headers: [.contentType: CloudEvent.batchMediaType])
            #expect(batch.status == .accepted, "\(batch.body)")
            let results = batch.json["results"]?.array ?? []
            #expect(results.map { $0["status"] } == [202, 202, 202], "one result per event, in order: \(batch.body)")
            #expect(results.allSatisfy { $0["runs"]?.array.first?["workflow"] == "sdk" })

            // Read back: each stored event is the SDK's own JSON form of it.
            let canonical = written["canonical"] ?? .null
            let runs = try await api.request(.get, "/v1/runs?workflow=sdk&limit=50").json["data"]?.array ?? []
            #expect(runs.count == 9)
            var seen: Set<String> = []
            for run in runs {
                let id = try #require(run["id"]?.stringValue)
                let event = try #require(try await gateway.store.loadRun(RunID(id))?.run.event)
                let eventID = try #require(event["id"]?.stringValue)
                seen.insert(eventID)
                #expect(event == canonical[eventID], "\(eventID): stored \(event.text), the SDK wrote \(canonical[eventID]?.text ?? "nothing")")
            }
            #expect(seen.count == 9)
        }
    }

    @Test("a batch with an invalid event answers a problem for it and ingests the rest; binary mode without ce-id is 400")
    func invalidOnes() async throws {
        let directory = try TemporaryDirectory()
        try directory.write("workflows/sdk.yaml", """
            id: sdk
            trigger: { event: com.example.sdk }
            steps:
              - { id: mark, action: tag, with: { tag: "sdk" } }
            """)
        let gateway = try await TestGateway(configurationDirectory: directory.path)
        try await gateway.test { api in
            let batch = try await api.request(.post, "/v1/events", body: """
                [{"specversion": "1.0", "id": "b-1", "source": "s", "type": "com.example.sdk"},
                 {"specversion": "1.0", "source": "s", "type": "com.example.sdk"},
                 {"specversion": "1.0", "id": "b-1", "source": "s", "type": "com.example.sdk"}]
                """, headers: [.contentType: CloudEvent.batchMediaType])
            #expect(batch.status == .accepted)
            let results = batch.json["results"]?.array ?? []
            #expect(results.count == 3)
            #expect(results.first?["status"] == 202)
            #expect(results.dropFirst().first?["status"] == 400 && results.dropFirst().first?["errors"]?.array.first?["path"] == "id")
            #expect(results.last?["status"] == 200, "the same id again is a duplicate")
            let notArray = try await api.request(.post, "/v1/events", body: "{}", headers: [.contentType: CloudEvent.batchMediaType])
            #expect(notArray.status == .badRequest)
            let noID = try await api.request(.post, "/v1/events", body: "{}", headers: [
                .contentType: "application/json", HTTPField.Name("ce-specversion")!: "1.0", HTTPField.Name("ce-source")!: "s",
                HTTPField.Name("ce-type")!: "com.example.sdk",
            ])
            #expect(noID.status == .badRequest)
            #expect(noID.json["errors"]?.array.first?["path"] == "id")
        }
    }
}
