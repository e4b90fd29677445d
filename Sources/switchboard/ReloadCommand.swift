import ArgumentParser
import AsyncHTTPClient
import CEL
import Foundation
import NIOCore
import Switchboard

struct ReloadCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "reload",
        abstract: "Make a running gateway read its configuration again (POST /v1/admin/reload).",
        discussion: """
            The API key comes from SWITCHBOARD_API_KEY and needs the scope workflows:write. A configuration \
            with errors changes nothing: every error is printed with its file, line and column, and the \
            command exits with status 1. Sending SIGHUP to the gateway's process does the same reload.
            """)

    @Option(help: "The gateway's address (env SWITCHBOARD_URL; default http://127.0.0.1:8080)") var url: String?

    func run() async throws {
        let environment = ProcessInfo.processInfo.environment
        let base = url ?? environment["SWITCHBOARD_URL"] ?? "http://127.0.0.1:8080"
        guard let key = environment["SWITCHBOARD_API_KEY"], !key.isEmpty else {
            throw UserError("set SWITCHBOARD_API_KEY to an API key with the scope workflows:write")
        }
        var request = HTTPClientRequest(url: base.trimmingSuffix("/") + "/v1/admin/reload")
        request.method = .POST
        request.headers.add(name: "Authorization", value: "Bearer \(key)")
        let response: HTTPClientResponse
        let body: JSON
        do {
            response = try await HTTPClient.shared.execute(request, timeout: .seconds(60))
            body = (try? JSON.parse(Data(buffer: try await response.body.collect(upTo: 4 << 20)))) ?? .null
        } catch {
            throw UserError("cannot reach the gateway at \(base): \(error)")
        }
        switch response.status.code {
        case 200:
            for workflow in body["workflows"]?.arrayValue ?? [] {
                print("\(workflow["id"]?.stringValue ?? "?")\t\(workflow["version"]?.stringValue ?? "?")")
            }
            print("reloaded: \(body["workflows"]?.arrayValue?.count ?? 0) workflow(s), \(body["connectors"]?.arrayValue?.count ?? 0) connector(s)")
        case 422:
            for error in body["errors"]?.arrayValue ?? [] {
                let place = [error["file"]?.stringValue, error["line"]?.numberValue.map { String(Int($0)) },
                             error["column"]?.numberValue.map { String(Int($0)) }].compactMap { $0 }.joined(separator: ":")
                FileHandle.standardError.write(Data("\(place): \(error["message"]?.stringValue ?? "")\n".utf8))
            }
            throw UserError(body["detail"]?.stringValue ?? "the configuration has errors; nothing changed")
        default:
            throw UserError("the gateway answered \(response.status.code): \(body["detail"]?.stringValue ?? body.text)")
        }
    }
}

extension String {
    func trimmingSuffix(_ suffix: String) -> String { hasSuffix(suffix) ? String(dropLast(suffix.count)) : self }
}
