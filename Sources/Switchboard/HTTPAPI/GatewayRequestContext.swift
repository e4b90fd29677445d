import CEL
import Foundation
import HTTPTypes
import Hummingbird
import Synchronization
import Logging

/// The request context of every route: Hummingbird's core plus the authenticated API key.
public struct GatewayRequestContext: RequestContext {
    public var coreContext: CoreRequestContextStorage
    /// The key that authenticated the request, on `/v1` routes.
    public var apiKey: APIKeyRecord?
    /// The request's id (`X-Request-Id`), set by ``RequestLogMiddleware``.
    public var requestID: String?
    /// The address of the client's end of the connection.
    public let sourceIP: String?

    public init(source: ApplicationRequestContextSource) {
        coreContext = .init(source: source)
        sourceIP = source.channel.remoteAddress?.ipAddress
    }

    /// The audit entry of `action` on `target` by this request's key, from this request.
    func audit(_ action: String, target: String, details: JSON? = nil) -> AuditEntry {
        AuditEntry(at: Date(), actor: .key, name: apiKey?.name ?? "unknown", action: action, target: target,
                   requestID: requestID, sourceIP: sourceIP, details: details)
    }

    /// Requests larger than 1 MiB are refused with 413.
    public var maxUploadSize: Int { 1 << 20 }
}

/// Checks `Authorization: Bearer <key>` and the scope a route needs.
struct APIKeyMiddleware: RouterMiddleware {
    typealias Context = GatewayRequestContext
    let gateway: Gateway
    /// Holds each key to the request rate, when one is set.
    var limiter: RequestRateLimiter? = nil

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        guard let header = request.headers[.authorization] else {
            throw Problem.unauthorized("missing Authorization header; send 'Authorization: Bearer <api key>'")
        }
        // Trimmed by hand: Foundation's trimmingCharacters goes through NSString on Linux.
        guard header.hasPrefix("Bearer "),
              case let token = String(header.dropFirst(7).trimmingBlanks),
              !token.isEmpty
        else {
            throw Problem.unauthorized("the Authorization header must be 'Bearer <api key>'")
        }
        guard let key = try await gateway.authenticate(token: token) else {
            throw Problem.unauthorized("the API key is not valid: unknown, revoked or expired")
        }
        if let limiter, let wait = limiter.take("key:" + key.name) { throw RequestRateLimiter.problem(wait, "API key") }
        var context = context
        context.apiKey = key
        return try await next(request, context)
    }
}

/// Requires a scope of the authenticated key.
func requireScope(_ scope: String, _ context: GatewayRequestContext) throws {
    guard let key = context.apiKey else { throw Problem.unauthorized("not authenticated") }
    guard key.scopes.contains(scope) || key.scopes.contains("*") else {
        throw Problem(.forbidden, "the API key '\(key.name)' lacks the scope '\(scope)'")
    }
}

/// Gives each request an id (`X-Request-Id`, taken from the request when present) and logs it.
struct RequestLogMiddleware: RouterMiddleware {
    typealias Context = GatewayRequestContext
    let metrics: GatewayMetrics

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        let requestID = request.headers[.requestID] ?? RequestIDs.next()
        // The id goes into each log line's metadata rather than into the context's logger:
        // setting logger metadata re-renders the handler's metadata on every request.
        var context = context
        context.requestID = String(requestID)
        do {
            var response = try await next(request, context)
            response.headers[.requestID] = String(requestID)
            metrics.request(status: Int(response.status.code))
            if response.status.code >= 500 {
                context.logger.error("request failed", metadata: ["method": "\(request.method)", "path": "\(request.uri.path)", "request_id": "\(requestID)",
                                                                  "status": "\(response.status.code)"])
            } else {
                context.logger.debug("request", metadata: ["method": "\(request.method)", "path": "\(request.uri.path)", "request_id": "\(requestID)",
                                                           "status": "\(response.status.code)"])
            }
            return response
        } catch let problem as Problem {
            var response = try problem.response(from: request, context: context)
            response.headers[.requestID] = String(requestID)
            metrics.request(status: Int(problem.status.code))
            context.logger.info("request refused", metadata: ["method": "\(request.method)", "path": "\(request.uri.path)", "request_id": "\(requestID)",
                                                              "status": "\(problem.status.code)"])
            return response
        } catch let error as StoreError where error.code == .unavailable {
            var response = try Problem.storeUnavailable().response(from: request, context: context)
            response.headers[.requestID] = String(requestID)
            metrics.request(status: 503)
            context.logger.warning("request refused: the database cannot be reached",
                                   metadata: ["method": "\(request.method)", "path": "\(request.uri.path)", "request_id": "\(requestID)"])
            return response
        } catch let error as HTTPError {
            let problem = Problem(error.status, error.body ?? error.status.reasonPhrase)
            var response = try problem.response(from: request, context: context)
            response.headers[.requestID] = String(requestID)
            metrics.request(status: Int(error.status.code))
            return response
        } catch {
            context.logger.error("request failed", metadata: ["method": "\(request.method)", "path": "\(request.uri.path)", "request_id": "\(requestID)",
                                                              "error": "\(String(reflecting: type(of: error)))"])
            metrics.request(status: 500)
            var response = try Problem(.internalServerError, "the request could not be completed").response(from: request, context: context)
            response.headers[.requestID] = String(requestID)
            return response
        }
    }
}

extension HTTPField.Name {
    static let requestID = HTTPField.Name("X-Request-Id")!
    static let idempotencyKey = HTTPField.Name("Idempotency-Key")!
}

extension Substring {
    /// Without leading and trailing spaces and tabs.
    var trimmingBlanks: Substring {
        var text = drop { $0 == " " || $0 == "\t" }
        while let last = text.last, last == " " || last == "\t" { text = text.dropLast() }
        return text
    }
}

/// Request ids for requests that bring none: a random per-process prefix and a counter.
enum RequestIDs {
    private static let prefix = String(UInt32.random(in: 0x1000_0000 ... 0xFFFF_FFFF), radix: 16)
    private static let counter = Atomic<UInt64>(0)

    static func next() -> String {
        prefix + "-" + String(counter.wrappingAdd(1, ordering: .relaxed).newValue, radix: 16)
    }
}
