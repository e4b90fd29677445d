import AsyncHTTPClient
import CEL
import Foundation
import Hummingbird
import NIOCore

/// The Slack stand-in's routes.
extension Sandbox {
    func addSlackRoutes(_ slack: RouterGroup<BasicRequestContext>) {
        slack.post("webhook") { [self] request, _ -> Response in
            guard let body = try? JSON.parse(Data(try await request.sandboxBody())) else {
                return .text("invalid_payload", status: .badRequest)
            }
            guard body["text"] != nil || body["blocks"] != nil else { return .text("no_text", status: .badRequest) }
            _ = store(body, channel: "webhook", via: "incoming-webhook")
            return .text("ok")
        }
        slack.post("api/chat.postMessage") { [self] request, _ -> Response in
            guard request.headers[.authorization] == "Bearer \(settings.slackBotToken)" else {
                return .json(["ok": false, "error": "invalid_auth"])
            }
            guard let body = try? JSON.parse(Data(try await request.sandboxBody())) else {
                return .json(["ok": false, "error": "invalid_json"])
            }
            guard let channel = body["channel"]?.stringValue, known(channel) else {
                return .json(["ok": false, "error": "channel_not_found"])
            }
            guard body["text"] != nil || body["blocks"] != nil else { return .json(["ok": false, "error": "no_text"]) }
            let ts = store(body, channel: channel, via: "chat.postMessage")
            return .json(["ok": true, "channel": .string(channel), "ts": .string(ts)])
        }
        slack.post("api/conversations.info") { [self] request, _ -> Response in
            guard request.headers[.authorization] == "Bearer \(settings.slackBotToken)" else {
                return .json(["ok": false, "error": "invalid_auth"])
            }
            let channel = FormEncoding.decode(try await request.sandboxBody())["channel"] ?? ""
            guard known(channel) else { return .json(["ok": false, "error": "channel_not_found"]) }
            return .json(["ok": true, "channel": ["id": .string(channel), "name": .string(channel)]])
        }
        slack.post("api/auth.test") { [self] request, _ -> Response in
            guard request.headers[.authorization] == "Bearer \(settings.slackBotToken)" else {
                return .json(["ok": false, "error": "invalid_auth"])
            }
            return .json(["ok": true, "team": "Sandbox", "user": "switchboard"])
        }
        slack.post("response/:ts") { [self] request, context -> Response in
            let ts = try context.parameters.require("ts")
            guard let body = try? JSON.parse(Data(try await request.sandboxBody())) else {
                return .text("invalid_payload", status: .badRequest)
            }
            let found = state.withLock { state -> Bool in
                guard let index = state.messages.firstIndex(where: { $0["ts"]?.stringValue == ts }),
                      case var .object(message) = state.messages[index] else { return false }
                if body["replace_original"] == .bool(true) {
                    message["text"] = body["text"] ?? .null
                    message["blocks"] = body["blocks"] ?? .null
                    message["replaced"] = true
                } else {
                    message["notices"] = .array((message["notices"]?.arrayValue ?? []) + [body["text"] ?? .null])
                }
                state.messages[index] = .object(message)
                return true
            }
            return found ? .text("ok") : .text("expired_url", status: .notFound)
        }
        slack.get("messages") { [self] _, _ -> Response in .json(["data": .array(state.withLock { $0.messages })]) }
        slack.post("messages/:ts/click") { [self] request, context -> Response in
            let ts = try context.parameters.require("ts")
            let raw = try await request.sandboxBody()
            // The page's buttons post a form; scripts and tests post JSON (curl -d sends either).
            let form = FormEncoding.decode(raw)
            let isForm = form["action_id"] != nil
            let fields = isForm ? form : Self.fields(raw)
            guard let actionID = fields["action_id"] else { return .json(["error": "give action_id"], status: .badRequest) }
            let (status, answer) = try await click(ts: ts, actionID: actionID, user: fields["user"] ?? "reviewer",
                                                   value: fields["value"])
            if isForm { return Response(status: .seeOther, headers: [.location: "/sandbox/slack"]) }
            return .json(["gateway_status": .number(Double(status)), "gateway_answer": answer])
        }
        slack.get { [self] _, _ -> Response in .text(page(), type: "text/html; charset=utf-8") }
    }

    private func known(_ channel: String) -> Bool {
        settings.slackChannels.contains(channel.hasPrefix("#") ? String(channel.dropFirst()) : channel)
    }

    /// Keeps a posted message; returns its `ts`.
    private func store(_ body: JSON, channel: String, via: String) -> String {
        let ts = String(format: "%.6f", Date().timeIntervalSince1970) + String(nextID("m").suffix(2))
        let message: JSON = ["ts": .string(ts), "channel": .string(channel), "via": .string(via), "text": body["text"] ?? .null,
                             "blocks": body["blocks"] ?? .null, "received_at": .string(Date().rfc3339), "notices": []]
        state.withLock { $0.messages.append(message) }
        return ts
    }

    /// Sends the gateway the interaction Slack would send for a click on a message's button,
    /// signed with the signing secret. `value` replaces the button's value (to test forgeries).
    func click(ts: String, actionID: String, user: String, value override: String? = nil) async throws -> (Int, JSON) {
        guard let message = state.withLock({ $0.messages.first { $0["ts"]?.stringValue == ts } }) else {
            return (404, ["error": .string("no message \(ts)")])
        }
        let actions = (message["blocks"]?.arrayValue ?? []).first { $0["type"]?.stringValue == "actions" }
        guard let button = actions?["elements"]?.arrayValue?.first(where: { $0["action_id"]?.stringValue == actionID }) else {
            return (404, ["error": .string("message \(ts) has no button \(actionID)")])
        }
        let payload: JSON = [
            "type": "block_actions", "api_app_id": "ASANDBOX", "token": "deprecated",
            "user": ["id": .string("U" + String(user.uppercased().filter(\.isLetter).prefix(8))), "username": .string(user),
                     "name": .string(user)],
            "team": ["id": "TSANDBOX", "domain": "sandbox"],
            "channel": ["id": message["channel"] ?? .string("webhook"), "name": message["channel"] ?? .string("webhook")],
            "container": ["type": "message", "message_ts": .string(ts)],
            "message": ["ts": .string(ts), "text": message["text"] ?? .null, "blocks": message["blocks"] ?? .null],
            "response_url": .string("\(settings.baseURL)/slack/response/\(ts)"),
            "actions": [["type": "button", "action_id": .string(actionID), "block_id": actions?["block_id"] ?? .null,
                         "value": .string(override ?? button["value"]?.stringValue ?? ""),
                         "action_ts": .string(String(Date().timeIntervalSince1970))]],
        ]
        let body = Array(FormEncoding.encode([("payload", payload.text)]).utf8)
        let secret = try SigningSecret(settings.slackSigningSecret)
        var request = HTTPClientRequest(url: settings.gatewayURL + "/v1/slack/interactions")
        request.method = .POST
        request.headers.add(name: "Content-Type", value: "application/x-www-form-urlencoded")
        for (name, value) in InboundVerifier.sign(.slackV0, secret: secret, body: body, timestamp: Int64(Date().timeIntervalSince1970)) {
            request.headers.add(name: name, value: value)
        }
        request.body = .bytes(ByteBuffer(bytes: body))
        let response = try await HTTPClient.shared.execute(request, timeout: .seconds(3))
        let answer = try await response.body.collect(upTo: 1 << 16)
        return (Int(response.status.code), (try? JSON.parse(Data(buffer: answer))) ?? .string(String(buffer: answer)))
    }

    /// String fields of a JSON object body.
    static func fields(_ body: [UInt8]) -> [String: String] {
        guard case let .object(object)? = try? JSON.parse(Data(body)) else { return [:] }
        return object.compactMapValues(\.stringValue)
    }

    /// The stand-in's web page: every message, newest first, with working buttons.
    private func page() -> String {
        func escape(_ text: String) -> String {
            text.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;")
                .replacingOccurrences(of: ">", with: "&gt;").replacingOccurrences(of: "\"", with: "&quot;")
        }
        var html = """
            <!doctype html><html><head><meta charset="utf-8"><meta http-equiv="refresh" content="3">
            <title>Switchboard sandbox: Slack</title>
            <style>body{font:15px system-ui;max-width:760px;margin:2em auto;color:#1d1c1d}
            .m{border:1px solid #ddd;border-radius:8px;padding:12px 16px;margin:12px 0}.meta{color:#666;font-size:12px}
            h3{margin:.2em 0}.f{display:inline-block;min-width:45%;margin:4px 0}.n{background:#fff6d6;padding:4px 8px;border-radius:4px}
            button{font-size:14px;padding:6px 14px;margin-right:8px;border-radius:4px;border:1px solid #999;cursor:pointer}
            .primary{background:#007a5a;color:#fff}.danger{background:#e01e5a;color:#fff}</style></head><body>
            <h1>Slack stand-in</h1><p class="meta">Messages Switchboard posted (refreshes every 3 s). Buttons send signed clicks to \(escape(settings.gatewayURL)).</p>
            """
        let messages = state.withLock { $0.messages }
        if messages.isEmpty { html += "<p>No messages yet. Send an inquiry of a minor: <code>fixtures/events/inquiry-minor.json</code>.</p>" }
        for message in messages.reversed() {
            let ts = message["ts"]?.stringValue ?? ""
            html += "<div class=\"m\"><div class=\"meta\">#\(escape(message["channel"]?.stringValue ?? "")) · \(escape(message["received_at"]?.stringValue ?? "")) · via \(escape(message["via"]?.stringValue ?? ""))</div>"
            let blocks = message["blocks"]?.arrayValue ?? []
            if blocks.isEmpty { html += "<p>\(SlackMarkdown.html(message["text"]?.stringValue ?? ""))</p>" }
            for block in blocks {
                switch block["type"]?.stringValue {
                case "header": html += "<h3>\(escape(block["text"]?["text"]?.stringValue ?? ""))</h3>"
                case "section":
                    if let text = block["text"]?["text"]?.stringValue { html += "<p>\(SlackMarkdown.html(text))</p>" }
                    for field in block["fields"]?.arrayValue ?? [] {
                        html += "<span class=\"f\">\(SlackMarkdown.html(field["text"]?.stringValue ?? ""))</span>"
                    }
                case "context":
                    for element in block["elements"]?.arrayValue ?? [] { html += "<p class=\"meta\">\(SlackMarkdown.html(element["text"]?.stringValue ?? ""))</p>" }
                case "actions":
                    html += "<form method=\"post\" action=\"/sandbox/slack/messages/\(escape(ts))/click\"><input type=\"hidden\" name=\"user\" value=\"reviewer\">"
                    for button in block["elements"]?.arrayValue ?? [] {
                        let id = button["action_id"]?.stringValue ?? ""
                        html += "<button name=\"action_id\" value=\"\(escape(id))\" class=\"\(escape(button["style"]?.stringValue ?? ""))\">\(escape(button["text"]?["text"]?.stringValue ?? id))</button>"
                    }
                    html += "</form>"
                default: break
                }
            }
            for notice in message["notices"]?.arrayValue ?? [] { html += "<p class=\"n\">\(SlackMarkdown.html(notice.stringValue ?? ""))</p>" }
            html += "</div>"
        }
        return html + "</body></html>"
    }
}
