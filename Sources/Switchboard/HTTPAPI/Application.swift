import Foundation
import Hummingbird
import HummingbirdCore
import HummingbirdTLS
import Logging
import NIOCore
import ServiceLifecycle

/// The gateway's network I/O threads: the event loops that the HTTP server and the outbound
/// client share (NIO's singleton group).
///
/// The default is NIO's: one loop per core. Fewer loops use less CPU per event when the cores are
/// shared with other work, but a single loop thread that is descheduled holds up every connection.
public enum EventLoops {
    /// Sets how many loops the process runs. Call it once, before anything uses the network:
    /// NIO stops the process if the group was already made.
    public static func configure(count: Int) {
        NIOSingletons.groupLoopCountSuggestion = count
    }
}

/// Where the gateway listens and what it serves.
public struct ServerSettings: Sendable {
    public var host: String
    public var port: Int
    /// How long a client may take to send a request's head (from the connection's start or the
    /// previous response's end; an idle keep-alive connection closes after it too) and its body
    /// (from its head). Slower clients are disconnected.
    public var headTimeout: Duration = .seconds(30)
    public var bodyTimeout: Duration = .seconds(30)
    /// Requests per API key and per client address (a token bucket whose burst is one second's
    /// worth); more get 429 with `Retry-After`. nil: no limit.
    public var rateLimit: RateLimitSpec?
    /// Serve HTTPS with this certificate and key (``TLSFiles``); nil: plain HTTP, with TLS
    /// terminated in front of the gateway.
    public var tls: TLSFiles?

    public init(host: String = "127.0.0.1", port: Int = 8080) {
        self.host = host
        self.port = port
    }
}

/// A PEM certificate chain and its private key, for HTTPS (`--tls-cert`, `--tls-key`).
public struct TLSFiles: Sendable {
    public var certificate: String
    public var key: String

    public init(certificate: String, key: String) {
        self.certificate = certificate
        self.key = key
    }

    /// The server's TLS configuration; the error (``TLSFilesError``) says which file could not be
    /// read and why.
    public func configuration() throws -> TLSConfiguration {
        let chain: [NIOSSLCertificate]
        do { chain = try NIOSSLCertificate.fromPEMFile(certificate) } catch {
            throw TLSFilesError(description: "cannot read the TLS certificate \(certificate) (PEM expected): \(error)")
        }
        guard !chain.isEmpty else { throw TLSFilesError(description: "the TLS certificate file \(certificate) holds no certificate") }
        let privateKey: NIOSSLPrivateKey
        do { privateKey = try NIOSSLPrivateKey(file: key, format: .pem) } catch {
            throw TLSFilesError(description: "cannot read the TLS private key \(key) (PEM expected): \(error)")
        }
        return .makeServerConfiguration(certificateChain: chain.map { .certificate($0) }, privateKey: .privateKey(privateKey))
    }
}

/// A certificate or key that cannot serve HTTPS, and why.
public struct TLSFilesError: Error, CustomStringConvertible {
    public var description: String
}

/// Wires the gateway into an HTTP application: the router with every route, and the gateway's
/// services (the run scheduler, the delivery worker, the callback inbox) beside the server.
/// ``Gateway`` builds those parts over a store and a configuration; `switchboard serve` makes both.
///
/// ```swift
/// let gateway = Gateway(store: store, configuration: configuration, logger: logger)
/// let app = try buildApplication(gateway: gateway, settings: ServerSettings(port: 8080), logger: logger)
/// try await app.runService()
/// ```
/// - Parameter onRunning: called with the bound port once the server listens (useful with port 0).
/// - Throws: ``TLSFilesError`` when ``ServerSettings/tls`` names files that cannot serve HTTPS.
public func buildApplication(
    gateway: Gateway, settings: ServerSettings, logger: Logger,
    onRunning: @escaping @Sendable (Int) async -> Void = { _ in }
) throws -> some ApplicationProtocol {
    let router = Router(context: GatewayRequestContext.self)
    router.add(middleware: RequestLogMiddleware(metrics: gateway.metrics))
    let limiter = settings.rateLimit.map(RequestRateLimiter.init)
    if let limiter { router.add(middleware: AddressRateLimitMiddleware(limiter: limiter)) }
    router.add(middleware: MethodNotAllowedMiddleware(routes: gateway.routes))
    gateway.addRoutes(to: router, limiter: limiter)
    Console(gateway: gateway, secureCookies: settings.tls != nil).addRoutes(to: router)
    let limits = RequestDeadlineHandler.Limits(head: .nanoseconds(Int64(settings.headTimeout.timeInterval * 1e9)),
                                               body: .nanoseconds(Int64(settings.bodyTimeout.timeInterval * 1e9)))
    var decoder = HTTP1Channel.Configuration.DecoderConfiguration()
    decoder.maxHeaderFieldCount = 100
    decoder.maxHeaderListSize = 64 << 10
    decoder.maxHeaderFieldSize = 16 << 10
    var server = HTTPServerBuilder.http1(configuration: .init(additionalChannelHandlers: [RequestDeadlineHandler(limits: limits)],
                                                              httpDecoderConfiguration: decoder))
    if let tls = settings.tls { server = try .tls(server, tlsConfiguration: try tls.configuration()) }
    var app = Application(
        router: router,
        server: server,
        configuration: .init(address: .hostname(settings.host, port: settings.port), serverName: "switchboard"),
        onServerRunning: { channel in await onRunning(channel.localAddress?.port ?? settings.port) },
        logger: logger)
    app.addServices(gateway.services)
    return app
}
