import CEL
import Foundation
import HTTPTypes
import Hummingbird
import NIOCore

/// An API error rendered as RFC 9457 problem details (`application/problem+json`).
public struct Problem: HTTPResponseError, Sendable {
    /// One problem: with the request's field it is about (`path`), or, for a configuration, the
    /// file, line and column.
    public struct FieldError: Sendable, Equatable {
        public var path: String
        public var message: String
        public var file: String? = nil
        public var line: Int? = nil
        public var column: Int? = nil
    }

    public var status: HTTPResponse.Status
    public var title: String
    public var detail: String
    public var errors: [FieldError]
    /// Seconds after which the same request may succeed (`Retry-After`).
    public var retryAfter: Int?
    /// The methods the resource takes, on a 405 (`Allow`).
    public var allow: [String] = []

    public init(_ status: HTTPResponse.Status, _ detail: String, title: String? = nil, errors: [FieldError] = [],
                retryAfter: Int? = nil) {
        self.status = status
        self.title = title ?? status.reasonPhrase
        self.detail = detail
        self.errors = errors
        self.retryAfter = retryAfter
    }

    /// 503 while the database cannot be reached: nothing was accepted, and the client should try again.
    static func storeUnavailable() -> Problem {
        Problem(.serviceUnavailable, "the database cannot be reached; nothing was accepted, try again", retryAfter: 5)
    }

    var json: JSON {
        var object: [String: JSON] = [
            "type": .string("https://switchboard.dev/problems/\(title.lowercased().replacingOccurrences(of: " ", with: "-"))"),
            "title": .string(title), "status": .number(Double(status.code)), "detail": .string(detail),
        ]
        if !errors.isEmpty {
            object["errors"] = .array(errors.map { error in
                var fields: [String: JSON] = ["message": .string(error.message)]
                if error.file == nil || !error.path.isEmpty { fields["path"] = .string(error.path) }
                if let file = error.file { fields["file"] = .string(file) }
                if let line = error.line { fields["line"] = .number(Double(line)) }
                if let column = error.column { fields["column"] = .number(Double(column)) }
                return .object(fields)
            })
        }
        return .object(object)
    }

    public func response(from request: Request, context: some RequestContext) throws -> Response {
        var headers = HTTPFields()
        headers[.contentType] = "application/problem+json"
        if status == .unauthorized { headers[.wwwAuthenticate] = "Bearer" }
        if let retryAfter { headers[.retryAfter] = String(retryAfter) }
        if !allow.isEmpty { headers[.allow] = allow.joined(separator: ", ") }
        return Response(status: status, headers: headers, body: ResponseBody(byteBuffer: ByteBuffer(data: json.encoded())))
    }

    static func unauthorized(_ detail: String) -> Problem { Problem(.unauthorized, detail) }
    static func notFound(_ detail: String) -> Problem { Problem(.notFound, detail) }
    static func badRequest(_ detail: String, errors: [FieldError] = []) -> Problem { Problem(.badRequest, detail, errors: errors) }
}

extension Response {
    /// A JSON response.
    static func json(_ value: JSON, status: HTTPResponse.Status = .ok) -> Response {
        json(ByteBuffer(bytes: value.bytes), status: status)
    }

    /// A JSON response whose text is already written (``JSONObjectWriter``).
    static func json(text: String, status: HTTPResponse.Status = .ok) -> Response {
        json(ByteBuffer(string: text), status: status)
    }

    private static func json(_ body: ByteBuffer, status: HTTPResponse.Status) -> Response {
        var headers = HTTPFields()
        headers[.contentType] = "application/json"
        return Response(status: status, headers: headers, body: ResponseBody(byteBuffer: body))
    }
}

extension Request {
    /// Reads the body (at most `limit` bytes; 413 beyond) and parses it as JSON (400 with the position of the error).
    mutating func jsonBody(limit: Int = 1 << 20) async throws -> JSON {
        try await jsonBodyWithText(limit: limit).json
    }

    /// The body parsed, with its text as received.
    mutating func jsonBodyWithText(limit: Int = 1 << 20) async throws -> (json: JSON, text: String) {
        let buffer: ByteBuffer
        do {
            buffer = try await collectBody(upTo: limit)
        } catch is NIOTooManyBytesError {
            throw Problem(.contentTooLarge, "the request body is larger than \(limit) bytes")
        } catch let error as HTTPError where error.status == .contentTooLarge {
            throw Problem(.contentTooLarge, "the request body is larger than \(limit) bytes")
        }
        let bytes = Array(buffer.readableBytesView)
        if bytes.isEmpty { throw Problem.badRequest("the request body is empty; expected JSON") }
        do {
            return (try JSON.parse(bytes: bytes, limits: .request), String(decoding: bytes, as: UTF8.self))
        } catch {
            throw Problem.badRequest("the request body is not valid JSON: \(error.message) at line \(error.line), column \(error.column)")
        }
    }
}

extension JSONLimits {
    /// What a request body from outside may hold: arrays and objects nested at most 64 deep, and at
    /// most 100,000 values in all (a 1 MiB body of tiny values holds about 250,000).
    public static let request = JSONLimits(depth: 64, values: 100_000)
}
