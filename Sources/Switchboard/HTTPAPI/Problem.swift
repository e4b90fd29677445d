import CEL
import Foundation
import HTTPTypes
import Hummingbird
import NIOCore

/// An API error rendered as RFC 9457 problem details (`application/problem+json`).
public struct Problem: HTTPResponseError, Sendable {
    public struct FieldError: Sendable, Equatable {
        public var path: String
        public var message: String
    }

    public var status: HTTPResponse.Status
    public var title: String
    public var detail: String
    public var errors: [FieldError]

    public init(_ status: HTTPResponse.Status, _ detail: String, title: String? = nil, errors: [FieldError] = []) {
        self.status = status
        self.title = title ?? status.reasonPhrase
        self.detail = detail
        self.errors = errors
    }

    var json: JSON {
        var object: [String: JSON] = [
            "type": .string("https://switchboard.dev/problems/\(title.lowercased().replacingOccurrences(of: " ", with: "-"))"),
            "title": .string(title), "status": .number(Double(status.code)), "detail": .string(detail),
        ]
        if !errors.isEmpty {
            object["errors"] = .array(errors.map { ["path": .string($0.path), "message": .string($0.message)] })
        }
        return .object(object)
    }

    public func response(from request: Request, context: some RequestContext) throws -> Response {
        var headers = HTTPFields()
        headers[.contentType] = "application/problem+json"
        if status == .unauthorized { headers[.wwwAuthenticate] = "Bearer" }
        return Response(status: status, headers: headers, body: ResponseBody(byteBuffer: ByteBuffer(data: json.encoded())))
    }

    static func unauthorized(_ detail: String) -> Problem { Problem(.unauthorized, detail) }
    static func notFound(_ detail: String) -> Problem { Problem(.notFound, detail) }
    static func badRequest(_ detail: String, errors: [FieldError] = []) -> Problem { Problem(.badRequest, detail, errors: errors) }
}

extension Response {
    /// A JSON response.
    static func json(_ value: JSON, status: HTTPResponse.Status = .ok) -> Response {
        var headers = HTTPFields()
        headers[.contentType] = "application/json"
        return Response(status: status, headers: headers, body: ResponseBody(byteBuffer: ByteBuffer(data: value.encoded())))
    }
}

extension Request {
    /// Reads the body (at most `limit` bytes; 413 beyond) and parses it as JSON (400 with the position of the error).
    mutating func jsonBody(limit: Int = 1 << 20) async throws -> JSON {
        let buffer: ByteBuffer
        do {
            buffer = try await collectBody(upTo: limit)
        } catch is NIOTooManyBytesError {
            throw Problem(.contentTooLarge, "the request body is larger than \(limit) bytes")
        } catch let error as HTTPError where error.status == .contentTooLarge {
            throw Problem(.contentTooLarge, "the request body is larger than \(limit) bytes")
        }
        let data = Data(buffer: buffer)
        if data.isEmpty { throw Problem.badRequest("the request body is empty; expected JSON") }
        do {
            return try JSON.parse(data)
        } catch {
            throw Problem.badRequest("the request body is not valid JSON: \(JSONErrorPosition.describe(error, in: data))")
        }
    }
}

/// Finds where JSON text stops being valid, for error messages.
enum JSONErrorPosition {
    static func describe(_ error: Error, in data: Data) -> String {
        let offset = firstInvalidOffset(data)
        var line = 1
        var column = 1
        for byte in data.prefix(offset) {
            if byte == UInt8(ascii: "\n") { line += 1; column = 1 } else { column += 1 }
        }
        return "at line \(line), column \(column) (byte \(offset))"
    }

    /// A small validating scan: the offset of the first byte where the text stops being JSON.
    static func firstInvalidOffset(_ data: Data) -> Int {
        let bytes = [UInt8](data)
        var i = 0
        func ws() { while i < bytes.count, [0x20, 0x09, 0x0A, 0x0D].contains(bytes[i]) { i += 1 } }
        func value(_ depth: Int) -> Bool {
            ws()
            guard i < bytes.count, depth < 512 else { return false }
            switch bytes[i] {
            case UInt8(ascii: "{"):
                i += 1; ws()
                if i < bytes.count, bytes[i] == UInt8(ascii: "}") { i += 1; return true }
                while true {
                    ws()
                    guard string() else { return false }
                    ws()
                    guard i < bytes.count, bytes[i] == UInt8(ascii: ":") else { return false }
                    i += 1
                    guard value(depth + 1) else { return false }
                    ws()
                    guard i < bytes.count else { return false }
                    if bytes[i] == UInt8(ascii: ",") { i += 1; continue }
                    if bytes[i] == UInt8(ascii: "}") { i += 1; return true }
                    return false
                }
            case UInt8(ascii: "["):
                i += 1; ws()
                if i < bytes.count, bytes[i] == UInt8(ascii: "]") { i += 1; return true }
                while true {
                    guard value(depth + 1) else { return false }
                    ws()
                    guard i < bytes.count else { return false }
                    if bytes[i] == UInt8(ascii: ",") { i += 1; continue }
                    if bytes[i] == UInt8(ascii: "]") { i += 1; return true }
                    return false
                }
            case UInt8(ascii: "\""): return string()
            case UInt8(ascii: "t"): return literal("true")
            case UInt8(ascii: "f"): return literal("false")
            case UInt8(ascii: "n"): return literal("null")
            default:
                let start = i
                while i < bytes.count, "+-0123456789.eE".utf8.contains(bytes[i]) { i += 1 }
                return i > start
            }
        }
        func string() -> Bool {
            guard i < bytes.count, bytes[i] == UInt8(ascii: "\"") else { return false }
            i += 1
            while i < bytes.count {
                if bytes[i] == UInt8(ascii: "\\") { i += 2; continue }
                if bytes[i] == UInt8(ascii: "\"") { i += 1; return true }
                if bytes[i] < 0x20 { return false }
                i += 1
            }
            return false
        }
        func literal(_ word: String) -> Bool {
            let w = Array(word.utf8)
            guard i + w.count <= bytes.count, Array(bytes[i ..< i + w.count]) == w else { return false }
            i += w.count
            return true
        }
        if value(0) { ws() }
        return min(i, bytes.count)
    }
}
