import HTTPTypes
import NIOCore
import NIOHTTPTypes

/// Closes the connection of a client too slow to be anything but an attack (slowloris): a
/// request's head must have arrived within ``Limits/head`` of the connection opening or of the
/// previous response ending, and its body within ``Limits/body`` of its head. Idle keep-alive
/// connections close by the same head deadline. A handler of the server's pipeline, after the
/// HTTP decoder: one timer per request.
final class RequestDeadlineHandler: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPRequestPart
    typealias InboundOut = HTTPRequestPart
    typealias OutboundIn = HTTPResponsePart
    typealias OutboundOut = HTTPResponsePart

    /// How long a client may take.
    struct Limits: Sendable {
        /// For a request's head: from the connection's start or the previous response's end.
        var head: TimeAmount = .seconds(30)
        /// For a request's body, from its head.
        var body: TimeAmount = .seconds(30)
    }

    private let limits: Limits
    private var timer: Scheduled<Void>?

    init(limits: Limits) { self.limits = limits }

    func handlerAdded(context: ChannelHandlerContext) {
        if context.channel.isActive { arm(context, limits.head) }
    }

    func handlerRemoved(context: ChannelHandlerContext) { disarm() }

    func channelActive(context: ChannelHandlerContext) {
        arm(context, limits.head)
        context.fireChannelActive()
    }

    func channelInactive(context: ChannelHandlerContext) {
        disarm()
        context.fireChannelInactive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head: arm(context, limits.body)
        case .body: break
        case .end: disarm()  // the handler answers in its own time
        }
        context.fireChannelRead(data)
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        if case .end = unwrapOutboundIn(data) { arm(context, limits.head) }
        context.write(data, promise: promise)
    }

    private func arm(_ context: ChannelHandlerContext, _ limit: TimeAmount) {
        timer?.cancel()
        timer = context.eventLoop.assumeIsolated().scheduleTask(in: limit) {
            context.close(promise: nil)
        }
    }

    private func disarm() {
        timer?.cancel()
        timer = nil
    }
}
