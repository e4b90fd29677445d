import HTTPTypes
import Hummingbird

/// Answers a method a known path does not take with 405 and `Allow` (RFC 9110 §15.5.6), rather
/// than the router's 404: a client learns that the path exists and which methods it takes.
struct MethodNotAllowedMiddleware: RouterMiddleware {
    typealias Context = GatewayRequestContext

    /// Each route path's segments (nil where a parameter stands) and the methods it takes.
    private let paths: [(segments: [Substring?], allow: [String], template: String)]

    init(routes: [Route]) {
        let grouped = Dictionary(grouping: routes, by: \.path)
        paths = grouped.map { path, routes in
            let segments = path.split(separator: "/").map { $0.hasPrefix("{") ? nil : $0 }
            return (segments, routes.map(\.method.rawValue).sorted(), path)
        }
    }

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        let method = request.method.rawValue
        let segments = request.uri.path.split(separator: "/")
        guard let known = paths.first(where: { Self.matches($0.segments, segments) }), !known.allow.contains(method) else {
            return try await next(request, context)
        }
        var problem = Problem(.methodNotAllowed,
                              "\(method) is not a method of \(known.template); it takes \(known.allow.joined(separator: ", "))")
        problem.allow = known.allow
        throw problem
    }

    private static func matches(_ template: [Substring?], _ segments: [Substring]) -> Bool {
        template.count == segments.count && zip(template, segments).allSatisfy { $0 == nil || $0 == $1 }
    }
}
