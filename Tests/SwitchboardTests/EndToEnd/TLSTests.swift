import AsyncHTTPClient
import CEL
import Foundation
import HummingbirdTLS
import Testing
@testable import Switchboard

/// `serve --tls-cert --tls-key`: HTTPS with a certificate the test makes (openssl), trusted by the
/// test's client; plain HTTP to it fails; a key that does not exist is refused at start, by name.
@Suite("End to end: HTTPS", .serialized, .timeLimit(.minutes(2)))
struct TLSTests {
    @Test("serve --tls-cert --tls-key answers HTTPS with that certificate; an unreadable key is refused at start")
    func https() async throws {
        let directory = try TemporaryDirectory()
        let certificate = directory.file("cert.pem"), key = directory.file("key.pem")
        let made = try await offThePool { () throws -> Int32 in
            let process = Process()
            process.executableURL = URL(fileURLWithPath: "/usr/bin/openssl")
            process.arguments = ["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-days", "1",
                                 "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", key, "-out", certificate]
            process.standardOutput = FileHandle.nullDevice
            process.standardError = FileHandle.nullDevice
            try process.run()
            process.waitUntilExit()
            return process.terminationStatus
        }
        try #require(made == 0, "openssl made the certificate")
        try directory.write("config/workflows/w.yaml", "id: w\ntrigger: { api: {} }\nsteps: [ { id: a, action: approve } ]\n")
        let database = "sqlite:" + directory.file("db.sqlite")

        let server = try ServerProcess(config: directory.file("config"), database: database,
                                       arguments: ["--tls-cert", certificate, "--tls-key", key])
        try await server.waitUntilListening()
        #expect(server.log.contains("listening on https://127.0.0.1:"))
        var tls = TLSConfiguration.makeClientConfiguration()
        tls.trustRoots = .certificates(try NIOSSLCertificate.fromPEMFile(certificate))
        var configuration = HTTPClient.Configuration(tlsConfiguration: tls)
        configuration.timeout = .init(connect: .seconds(5), read: .seconds(10))
        let client = HTTPClient(eventLoopGroupProvider: .singleton, configuration: configuration)
        do {
            let response = try await client.execute(HTTPClientRequest(url: "https://127.0.0.1:\(server.port)/health"), timeout: .seconds(10))
            let body = try await response.body.collect(upTo: 1 << 16)
            #expect(response.status == .ok)
            #expect(String(buffer: body).contains("ok"))
            let plain = try? await client.execute(HTTPClientRequest(url: "http://127.0.0.1:\(server.port)/health"), timeout: .seconds(5))
            #expect(plain == nil || plain?.status != .ok, "plain HTTP is not served on the HTTPS port")
        } catch {
            try? await client.shutdown()
            throw error
        }
        try await client.shutdown()
        server.kill(signal: SIGTERM)
        #expect(await server.waitForExit() == 0)

        let refused = try await Binary.run(["serve", "--config", directory.file("config"), "--database", database, "--port", "0",
                                            "--tls-cert", certificate, "--tls-key", directory.file("missing.pem")])
        #expect(refused.status == 1)
        #expect(refused.stderr.contains("cannot read the TLS private key \(directory.file("missing.pem"))"), "\(refused.stderr)")
        let half = try await Binary.run(["serve", "--config", directory.file("config"), "--database", database, "--tls-cert", certificate])
        #expect(half.stderr.contains("--tls-cert and --tls-key (or SWITCHBOARD_TLS_CERT and SWITCHBOARD_TLS_KEY) go together"))
    }
}
