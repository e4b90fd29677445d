import AsyncHTTPClient
import CEL
import Foundation
import Hummingbird
import NIOCore

/// The Persona stand-in (`/sandbox/persona`): sends the recorded webhook bodies of
/// ``SandboxSettings/personaFixtures`` to the gateway's `POST /v1/sources/persona`, signed as
/// Persona signs them (`Persona-Signature: t=<unix>,v1=<hex>`), each with a new event id so that
/// a body sent twice is two events.
extension Sandbox {
    func addPersonaRoutes(_ persona: RouterGroup<BasicRequestContext>) {
        persona.get("fixtures") { [self] _, _ -> Response in .json(["data": .array(personaFixtureNames().map(JSON.string))]) }
        persona.post("send") { [self] request, _ -> Response in
            let raw = try await request.sandboxBody()
            // The page's buttons post a form; scripts and tests post JSON.
            let form = FormEncoding.decode(raw)
            let isForm = form["fixture"] != nil
            guard let fixture = isForm ? form["fixture"] : Self.fields(raw)["fixture"] else {
                return .json(["error": "give fixture, one of GET /sandbox/persona/fixtures"], status: .badRequest)
            }
            let (status, answer) = try await sendPersona(fixture: fixture)
            if isForm {
                state.withLock { $0.personaSent.append(["fixture": .string(fixture), "gateway_status": .number(Double(status)),
                                                        "gateway_answer": answer, "sent_at": .string(Date().rfc3339)]) }
                return Response(status: .seeOther, headers: [.location: "/sandbox/persona"])
            }
            return .json(["gateway_status": .number(Double(status)), "gateway_answer": answer], status: status == 0 ? .badGateway : .ok)
        }
        persona.get { [self] _, _ -> Response in .text(personaPage(), type: "text/html; charset=utf-8") }
    }

    /// The fixture files, sorted.
    func personaFixtureNames() -> [String] {
        ((try? FileManager.default.contentsOfDirectory(atPath: settings.personaFixtures)) ?? []).filter { $0.hasSuffix(".json") }.sorted()
    }

    /// Signs and sends one fixture (a new event id each time) to the gateway; its status and answer
    /// (status 0 when the gateway could not be reached, 404 for an unknown fixture).
    func sendPersona(fixture: String) async throws -> (Int, JSON) {
        guard personaFixtureNames().contains(fixture),
              let text = try? String(contentsOfFile: (settings.personaFixtures as NSString).appendingPathComponent(fixture), encoding: .utf8),
              case var .object(root) = try JSON.parse(text), case var .object(data)? = root["data"]
        else {
            return (404, ["error": .string("no fixture '\(fixture)'; see GET /sandbox/persona/fixtures")])
        }
        data["id"] = .string(nextID("evt"))
        root["data"] = .object(data)
        let body = Array(JSON.object(root).text.utf8)
        let secret = try SigningSecret(settings.personaWebhookSecret)
        var request = HTTPClientRequest(url: settings.gatewayURL + "/v1/sources/persona")
        request.method = .POST
        request.headers.add(name: "Content-Type", value: "application/json")
        let signed = InboundVerifier.sign(.timestampedHMAC(header: "Persona-Signature"), secret: secret, body: body,
                                          timestamp: Int64(Date().timeIntervalSince1970))
        for (name, value) in signed { request.headers.add(name: name, value: value) }
        request.body = .bytes(ByteBuffer(bytes: body))
        do {
            let response = try await HTTPClient.shared.execute(request, timeout: .seconds(5))
            let answer = try await response.body.collect(upTo: 1 << 16)
            logger.info("sandbox persona webhook sent", metadata: ["fixture": "\(fixture)", "status": "\(response.status.code)"])
            return (Int(response.status.code), (try? JSON.parse(Data(buffer: answer))) ?? .string(String(buffer: answer)))
        } catch {
            return (0, ["error": .string("the gateway at \(settings.gatewayURL) could not be reached: \(error)")])
        }
    }

    /// A page with a button per fixture and what the gateway answered.
    private func personaPage() -> String {
        func escape(_ text: String) -> String {
            text.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;")
                .replacingOccurrences(of: ">", with: "&gt;").replacingOccurrences(of: "\"", with: "&quot;")
        }
        var html = """
            <!doctype html><html><head><meta charset="utf-8"><title>Switchboard sandbox: Persona</title>
            <style>body{font:15px system-ui;max-width:760px;margin:2em auto;color:#1d1c1d}.meta{color:#666;font-size:12px}
            button{font-size:14px;padding:6px 14px;margin:4px 0;border-radius:4px;border:1px solid #999;cursor:pointer;min-width:22em;text-align:left}
            pre{background:#f6f6f6;padding:8px;border-radius:4px;white-space:pre-wrap}</style></head><body>
            <h1>Persona stand-in</h1>
            <p class="meta">Each button sends a recorded Persona webhook, signed with Persona-Signature, to
            \(escape(settings.gatewayURL))/v1/sources/persona. Reviews land on the <a href="/sandbox/slack">Slack stand-in</a>.</p>
            <form method="post" action="/sandbox/persona/send">
            """
        for name in personaFixtureNames() {
            html += "<div><button name=\"fixture\" value=\"\(escape(name))\">\(escape(name))</button></div>"
        }
        html += "</form>"
        let sent = state.withLock { $0.personaSent }
        for entry in sent.reversed().prefix(10) {
            html += "<p class=\"meta\">\(escape(entry["sent_at"]?.stringValue ?? "")) · \(escape(entry["fixture"]?.stringValue ?? "")) → \(escape(entry["gateway_status"]?.text ?? ""))</p>"
            html += "<pre>\(escape(entry["gateway_answer"]?.text ?? ""))</pre>"
        }
        return html + "</body></html>"
    }
}
