/// A function that CEL expressions can call, registered with a ``CELEnvironment``.
///
/// Arguments arrive with the receiver first: `x.f(a)` and `f(x, a)` both call the
/// implementation with `[x, a]`, when the function allows that style.
///
/// ```swift
/// env.register(CELFunction("double_it", style: .global, arities: [1]) { args, _ in
///     guard case let .int(v) = args[0] else { throw CELError.noSuchOverload("double_it", args) }
///     return .int(v * 2)
/// })
/// ```
public struct CELFunction: Sendable {
    /// How a function may be called.
    public struct Style: OptionSet, Sendable {
        public let rawValue: Int
        public init(rawValue: Int) { self.rawValue = rawValue }
        /// `f(x, y)`
        public static let global = Style(rawValue: 1)
        /// `x.f(y)`
        public static let receiver = Style(rawValue: 2)
        public static let both: Style = [.global, .receiver]
    }

    public typealias Implementation = @Sendable (_ args: [CELValue], _ context: CELContext) throws(CELError) -> CELValue

    public let name: String
    public let style: Style
    /// Accepted argument counts, the receiver included.
    public let arities: Set<Int>
    public let implementation: Implementation

    public init(_ name: String, style: Style, arities: Set<Int>, _ implementation: @escaping Implementation) {
        self.name = name
        self.style = style
        self.arities = arities
        self.implementation = implementation
    }
}

/// What an evaluation knows besides its variables: the clock and a host-supplied value.
public struct CELContext: Sendable {
    /// The instant that time-relative functions such as `age()` measure from.
    public var now: CELTimestamp?
    /// Anything the host's functions need, such as the lists `inList()` reads.
    public var host: (any Sendable)?

    public init(now: CELTimestamp? = nil, host: (any Sendable)? = nil) {
        self.now = now
        self.host = host
    }
}
