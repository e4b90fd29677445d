import AsyncHTTPClient
import CEL
import Foundation
import NIOCore
import NIOHTTP1

/// Makes one HTTP attempt with the shared client: SSRF check on every hop, bounded body
/// reading, and errors sorted into the delivery log's classes.
struct HTTPSender: Sendable {
    let client: HTTPClient
    /// Response bodies are read up to this many bytes; the rest is not read.
    static let bodyLimit = 1 << 20
    /// The delivery log keeps this much of each body.
    static let excerptLimit = 4096

    struct Result: Sendable {
        var response: ConnectorResponse?
        var errorClass: String?
        var errorMessage: String?
        var finalURL: String
    }

    func send(method: String, url: String, headers: [(String, String)], body: String?, guard ssrf: SSRFGuard,
              followRedirects: Bool, timeout: Duration) async -> Result
    {
        var currentURL = url
        var currentMethod = method
        var currentBody = body
        for _ in 0 ..< 6 {
            guard let host = URL(string: currentURL)?.host else {
                return Result(errorClass: "connect", errorMessage: "'\(currentURL)' has no host", finalURL: currentURL)
            }
            if let refusal = await ssrf.check(host: host) {
                return Result(errorClass: "ssrf_blocked", errorMessage: "refused: \(refusal)", finalURL: currentURL)
            }
            var request = HTTPClientRequest(url: currentURL)
            request.method = HTTPMethod(rawValue: currentMethod)
            for (name, value) in headers { request.headers.add(name: name, value: value) }
            if let currentBody { request.body = .bytes(ByteBuffer(string: currentBody)) }
            do {
                let response = try await client.execute(request, timeout: .nanoseconds(Int64(timeout.timeInterval * 1e9)))
                var collected: [UInt8] = []
                var truncated = false
                for try await chunk in response.body {
                    let room = Self.bodyLimit - collected.count
                    if chunk.readableBytes > room {
                        collected.append(contentsOf: chunk.readableBytesView.prefix(room))
                        truncated = true
                        break
                    }
                    collected.append(contentsOf: chunk.readableBytesView)
                }
                let status = Int(response.status.code)
                let responseHeaders = response.headers.map { ($0.name, $0.value) }
                if (300 ... 399).contains(status), followRedirects, let location = response.headers.first(name: "location"),
                   let next = URL(string: location, relativeTo: URL(string: currentURL))?.absoluteString
                {
                    currentURL = next
                    if status == 303 || ((status == 301 || status == 302) && currentMethod == "POST") {
                        currentMethod = "GET"
                        currentBody = nil
                    }
                    continue
                }
                return Result(response: ConnectorResponse(status: status, headers: responseHeaders, body: collected, truncated: truncated),
                              finalURL: currentURL)
            } catch {
                let (errorClass, message) = Self.classify(error)
                return Result(errorClass: errorClass, errorMessage: message, finalURL: currentURL)
            }
        }
        return Result(errorClass: "http_status", errorMessage: "more than 5 redirects", finalURL: currentURL)
    }

    /// Sorts a client error into timeout, connect, tls or cancelled.
    static func classify(_ error: Error) -> (String, String) {
        if error is CancellationError { return ("cancelled", "the attempt was cancelled") }
        if let clientError = error as? HTTPClientError {
            switch clientError {
            case .deadlineExceeded, .readTimeout, .writeTimeout:
                return ("timeout", "no complete answer within the time limit")
            case .connectTimeout:
                return ("timeout", "the connection was not established within the time limit")
            case .cancelled:
                return ("cancelled", "the attempt was cancelled")
            case .remoteConnectionClosed:
                return ("connect", "the server closed the connection")
            default:
                return ("connect", "\(clientError)")
            }
        }
        let text = String(describing: error)
        if text.lowercased().contains("ssl") || text.lowercased().contains("tls") || text.contains("certificate") {
            return ("tls", "the TLS handshake failed")
        }
        if text.contains("connectTimeout") { return ("timeout", "the connection was not established within the time limit") }
        return ("connect", "the connection failed (\(type(of: error)))")
    }
}
