import HTTPTypes
import Hummingbird
import Logging

/// The request context of every route: Hummingbird's core plus the authenticated API key.
public struct GatewayRequestContext: RequestContext {
    public var coreContext: CoreRequestContextStorage
    /// The key that authenticated the request, on `/v1` routes.
    public var apiKey: APIKeyRecord?

    public init(source: ApplicationRequestContextSource) {
        coreContext = .init(source: source)
    }

    /// Requests larger than 1 MiB are refused with 413.
    public var maxUploadSize: Int { 1 << 20 }
}

/// Checks `Authorization: Bearer <key>` and the scope a route needs.
struct APIKeyMiddleware: RouterMiddleware {
    typealias Context = GatewayRequestContext
    let gateway: Gateway

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        guard let header = request.headers[.authorization] else {
            throw Problem.unauthorized("missing Authorization header; send 'Authorization: Bearer <api key>'")
        }
        guard header.hasPrefix("Bearer "), case let token = String(header.dropFirst(7)).trimmingCharacters(in: .whitespaces),
              !token.isEmpty
        else {
            throw Problem.unauthorized("the Authorization header must be 'Bearer <api key>'")
        }
        guard let key = try await gateway.authenticate(token: token) else {
            throw Problem.unauthorized("the API key is not valid or has been revoked")
        }
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
        let requestID = request.headers[.requestID] ?? TimeOrderedID.make(milliseconds: 0).suffix(16).lowercased()
        var context = context
        context.logger[metadataKey: "request_id"] = .string(String(requestID))
        do {
            var response = try await next(request, context)
            response.headers[.requestID] = String(requestID)
            metrics.request(status: Int(response.status.code))
            if response.status.code >= 500 {
                context.logger.error("request failed", metadata: ["method": "\(request.method)", "path": "\(request.uri.path)",
                                                                  "status": "\(response.status.code)"])
            } else {
                context.logger.debug("request", metadata: ["method": "\(request.method)", "path": "\(request.uri.path)",
                                                           "status": "\(response.status.code)"])
            }
            return response
        } catch let problem as Problem {
            var response = try problem.response(from: request, context: context)
            response.headers[.requestID] = String(requestID)
            metrics.request(status: Int(problem.status.code))
            context.logger.info("request refused", metadata: ["method": "\(request.method)", "path": "\(request.uri.path)",
                                                              "status": "\(problem.status.code)"])
            return response
        } catch let error as HTTPError {
            let problem = Problem(error.status, error.body ?? error.status.reasonPhrase)
            var response = try problem.response(from: request, context: context)
            response.headers[.requestID] = String(requestID)
            metrics.request(status: Int(error.status.code))
            return response
        } catch {
            context.logger.error("request failed", metadata: ["method": "\(request.method)", "path": "\(request.uri.path)",
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
