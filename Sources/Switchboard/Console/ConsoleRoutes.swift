import CEL
import Crypto
import Foundation
import HTTPTypes
import Hummingbird
import NIOCore

/// The operator's console at `/console/`: pages rendered on the server, a session cookie opened by
/// signing in with an API key, and a CSRF token in every form. Each page and action needs the
/// scope of the API route it mirrors.
struct Console: Sendable {
    let gateway: Gateway
    /// Whether cookies are marked `Secure` (the gateway serves HTTPS).
    let secureCookies: Bool

    static let cookie = "switchboard_session"
    static let sessionLifetime: TimeInterval = 12 * 3600

    /// Who a request is: its open session and the key that opened it.
    struct User: Sendable {
        let session: ConsoleSession
        let key: APIKeyRecord
        func can(_ scope: String) -> Bool { key.scopes.contains(scope) || key.scopes.contains("*") }
    }

    func addRoutes(to router: Router<GatewayRequestContext>) {
        router.get("/") { _, _ in Self.redirect("/console/runs") }
        router.get("/console") { _, _ in Self.redirect("/console/runs") }
        router.get("/console/assets/console.css") { _, _ in
            var response = Response(status: .ok, body: ResponseBody(byteBuffer: ByteBuffer(string: ConsoleTemplates.css)))
            response.headers[.contentType] = "text/css; charset=utf-8"
            response.headers[.cacheControl] = "max-age=3600"
            return response
        }
        router.get("/console/login") { request, _ in
            if try await user(request) != nil { return Self.redirect("/console/runs") }
            return page("Sign in", "login", [:], user: nil)
        }
        router.post("/console/login") { request, context in try await signIn(request, context) }
        router.post("/console/logout") { request, _ in
            guard let (user, _) = try await formUser(request) else { return Self.redirect("/console/login") }
            _ = try await gateway.store.endSession(user.session.id, at: gateway.clock.now())
            var response = Self.redirect("/console/login")
            response.headers[.setCookie] = "\(Self.cookie)=; Path=/console; HttpOnly; SameSite=Strict; Max-Age=0\(secureCookies ? "; Secure" : "")"
            return response
        }
        router.get("/console/runs") { request, _ in
            try await signedIn(request, scope: "runs:read") { user in try await runsPage(request, user) }
        }
        router.get("/console/runs/:id") { request, context in
            let id = RunID(try context.parameters.require("id"))
            return try await signedIn(request, scope: "runs:read") { user in try await runPage(id, user) }
        }
        router.post("/console/runs/:id/review") { request, context in
            let id = RunID(try context.parameters.require("id"))
            return try await review(id, request, context)
        }
        router.get("/console/deliveries") { request, _ in
            try await signedIn(request, scope: "deliveries:read") { user in try await deliveriesPage(request, user) }
        }
        router.get("/console/deliveries/:id") { request, context in
            let id = DeliveryID(try context.parameters.require("id"))
            return try await signedIn(request, scope: "deliveries:read") { user in try await deliveryPage(id, user) }
        }
        router.post("/console/deliveries/:id/retry") { request, context in
            let id = DeliveryID(try context.parameters.require("id"))
            guard let (user, _) = try await formUser(request) else { return Self.redirect("/console/login") }
            guard user.can("deliveries:write") else { throw Problem(.forbidden, "the key '\(user.key.name)' lacks the scope deliveries:write") }
            switch try await gateway.retryDelivery(id, audit: consoleAudit("delivery.retried", "delivery:\(id.rawValue)", user, context)) {
            case .reopened: return Self.redirect("/console/deliveries/\(Self.pathEscape(id.rawValue))")
            case .notFound: throw Problem.notFound("no delivery '\(id)'")
            case let .notRetryable(status): throw Problem(.conflict, "delivery '\(id)' is \(status.rawValue); only failed and dead ones are sent again")
            }
        }
        router.post("/console/deliveries/retry") { request, context in try await retryAll(request, context) }
        router.get("/console/workflows") { request, _ in
            try await signedIn(request, scope: "workflows:read") { user in workflowsPage(user) }
        }
        router.get("/console/workflows/:id") { request, context in
            let id = try context.parameters.require("id")
            return try await signedIn(request, scope: "workflows:read") { user in try await workflowPage(id, user) }
        }
        router.get("/console/lists") { request, _ in
            try await signedIn(request, scope: "lists:read") { user in try await listsPage(user) }
        }
        router.get("/console/lists/:name") { request, context in
            let name = try context.parameters.require("name")
            return try await signedIn(request, scope: "lists:read") { user in try await listPage(name, user, error: nil) }
        }
        router.post("/console/lists/:name/items") { request, context in
            try await changeList(try context.parameters.require("name"), add: true, request, context)
        }
        router.post("/console/lists/:name/remove") { request, context in
            try await changeList(try context.parameters.require("name"), add: false, request, context)
        }
        router.get("/console/connectors") { request, _ in
            try await signedIn(request, scope: "connectors:read") { user in connectorsPage(user, result: nil) }
        }
        router.post("/console/connectors/:id/test") { request, context in
            let id = try context.parameters.require("id")
            guard let (user, _) = try await formUser(request) else { return Self.redirect("/console/login") }
            guard user.can("connectors:write") else { throw Problem(.forbidden, "the key '\(user.key.name)' lacks the scope connectors:write") }
            guard gateway.configuration.connectors[id] != nil else { throw Problem.notFound("no connector '\(id)'") }
            let result = await gateway.deliveryWorker.test(connector: id)
            return connectorsPage(user, result: ["connector": id, "ok": result?.ok ?? false, "status": result?.status ?? "not_supported",
                                                 "detail": result?.detail ?? "this build cannot run connectors of this kind"])
        }
        router.get("/console/audit") { request, _ in
            try await signedIn(request, scope: "admin") { user in try await auditPage(request, user) }
        }
        router.get("/console/reviews") { request, _ in
            try await signedIn(request, scope: "runs:read") { user in try await reviewsPage(request, user) }
        }
    }

    // MARK: Sessions

    /// The open session a request's cookie names, with a key that is still valid.
    func user(_ request: Request) async throws -> User? {
        guard let token = Self.cookieValue(request.headers[.cookie], named: Self.cookie), !token.isEmpty else { return nil }
        let now = gateway.clock.now()
        guard let session = try await gateway.store.session(Self.digest(token)), session.isOpen(at: now),
              let key = try await gateway.store.apiKey(hash: session.keyHash), key.isValid(at: now)
        else { return nil }
        return User(session: session, key: key)
    }

    /// The user of a POSTed form and its fields, if the form carries the session's CSRF token;
    /// nil without a session. A form without the token (or with another session's) is refused.
    func formUser(_ request: Request) async throws -> (User, [String: String])? {
        guard let user = try await user(request) else { return nil }
        let fields = try await Self.form(request)
        guard let token = fields["csrf_token"],
              Self.constantTimeEqual(Array(token.utf8), Array(user.session.csrfToken.utf8))
        else {
            throw Problem(.forbidden, "the form's CSRF token is missing or not this session's; reload the page and try again")
        }
        return (user, fields)
    }

    func signIn(_ request: Request, _ context: GatewayRequestContext) async throws -> Response {
        let fields = try await Self.form(request)
        let now = gateway.clock.now()
        let given = fields["key"] ?? ""
        guard !given.isEmpty, let key = try await gateway.authenticate(token: given) else {
            try await gateway.store.recordAudit(AuditEntry(at: now, actor: .console, name: "unknown", action: "console.sign_in",
                                                           target: "console", outcome: "refused", requestID: context.requestID,
                                                           sourceIP: context.sourceIP))
            var response = page("Sign in", "login", ["error": "That key is not valid: unknown, revoked or expired."], user: nil)
            response.status = .unauthorized
            return response
        }
        let token = Self.randomToken()
        let session = ConsoleSession(id: Self.digest(token), keyHash: key.hash, csrfToken: Self.randomToken(), createdAt: now,
                                     expiresAt: now.addingTimeInterval(Self.sessionLifetime))
        try await gateway.store.createSession(session, audit: AuditEntry(
            at: now, actor: .console, name: key.name, action: "console.sign_in", target: "console", requestID: context.requestID,
            sourceIP: context.sourceIP))
        var response = Self.redirect("/console/runs")
        response.headers[.setCookie] = "\(Self.cookie)=\(token); Path=/console; HttpOnly; SameSite=Strict; Max-Age=\(Int(Self.sessionLifetime))"
            + (secureCookies ? "; Secure" : "")
        return response
    }

    /// Runs `body` for a signed-in user with `scope`; otherwise the sign-in page or a 403 page.
    func signedIn(_ request: Request, scope: String, _ body: (User) async throws -> Response) async throws -> Response {
        guard let user = try await user(request) else { return Self.redirect("/console/login") }
        guard user.can(scope) else {
            var response = page("Not allowed", "problem", ["title": "Not allowed",
                                                          "detail": "The key '\(user.key.name)' lacks the scope \(scope)."], user: user)
            response.status = .forbidden
            return response
        }
        return try await body(user)
    }

    func consoleAudit(_ action: String, _ target: String, _ user: User, _ context: GatewayRequestContext) -> AuditEntry {
        AuditEntry(at: gateway.clock.now(), actor: .console, name: user.key.name, action: action, target: target,
                   requestID: context.requestID, sourceIP: context.sourceIP)
    }

    // MARK: Rendering

    func page(_ title: String, _ template: String, _ object: [String: Any], user: User?) -> Response {
        var context = Self.present(object)
        context["csrf"] = user?.session.csrfToken ?? ""
        let body = ConsoleTemplates.render(template, context)
        var layout = context
        layout["title"] = title
        layout["body"] = body
        layout["signedIn"] = user != nil
        layout["keyName"] = user?.key.name ?? ""
        var response = Response(status: .ok, body: ResponseBody(byteBuffer: ByteBuffer(string: ConsoleTemplates.render("layout", layout))))
        response.headers[.contentType] = "text/html; charset=utf-8"
        response.headers[.cacheControl] = "no-store"
        response.headers[HTTPField.Name("Content-Security-Policy")!] = "default-src 'self'; style-src 'self' 'unsafe-inline'; frame-ancestors 'none'"
        response.headers[HTTPField.Name("X-Content-Type-Options")!] = "nosniff"
        return response
    }

    /// A 404 page saying what is missing.
    func notFound(_ detail: String, user: User) -> Response {
        var response = page("Not found", "problem", ["title": "Not found", "detail": detail], user: user)
        response.status = .notFound
        return response
    }

    /// The page's values with absent ones (nil optionals) left out, in nested lists too, so that a
    /// section for a missing value is skipped rather than showing "nil".
    static func present(_ object: [String: Any]) -> [String: Any] {
        var cleaned: [String: Any] = [:]
        for (key, value) in object {
            let mirror = Mirror(reflecting: value)
            if mirror.displayStyle == .optional {
                guard let unwrapped = mirror.children.first?.value else { continue }
                cleaned[key] = unwrapped
            } else if let list = value as? [[String: Any]] {
                cleaned[key] = list.map(present)
            } else {
                cleaned[key] = value
            }
        }
        return cleaned
    }

    static func redirect(_ location: String) -> Response {
        var response = Response(status: .seeOther)
        response.headers[.location] = location
        return response
    }

    static func pretty(_ json: JSON) -> String {
        guard let data = try? JSONSerialization.data(withJSONObject: json.foundationObject, options: [.prettyPrinted, .sortedKeys,
                                                                                                      .fragmentsAllowed, .withoutEscapingSlashes]),
              let text = String(data: data, encoding: .utf8) else { return json.text }
        return text
    }

    static func duration(_ seconds: TimeInterval) -> String {
        if seconds < 1 { return "\(Int(seconds * 1000)) ms" }
        if seconds < 120 { return String(format: "%.1f s", seconds) }
        if seconds < 7200 { return "\(Int(seconds / 60)) min" }
        return String(format: "%.1f h", seconds / 3600)
    }

    static func pathEscape(_ text: String) -> String {
        text.addingPercentEncoding(withAllowedCharacters: FormEncoding.unreserved) ?? text
    }

    static func form(_ request: Request) async throws -> [String: String] {
        var request = request
        let buffer = try await request.collectBody(upTo: 64 << 10)
        return FormEncoding.decode(Array(buffer.readableBytesView))
    }

    static func cookieValue(_ header: String?, named name: String) -> String? {
        guard let header else { return nil }
        for part in header.split(separator: ";") {
            let pair = part.split(separator: "=", maxSplits: 1).map { $0.trimmingCharacters(in: .whitespaces) }
            if pair.count == 2, pair[0] == name { return pair[1] }
        }
        return nil
    }

    static func randomToken() -> String {
        var generator = SystemRandomNumberGenerator()
        return Hex.encode((0 ..< 32).map { _ in UInt8.random(in: 0 ... 255, using: &generator) })
    }

    static func digest(_ token: String) -> String { Hex.encode(SHA256.hash(data: Data(token.utf8))) }

    static func constantTimeEqual(_ a: [UInt8], _ b: [UInt8]) -> Bool {
        guard a.count == b.count else { return false }
        var difference: UInt8 = 0
        for (x, y) in zip(a, b) { difference |= x ^ y }
        return difference == 0
    }
}
