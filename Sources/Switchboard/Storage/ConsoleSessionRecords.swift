import Foundation

/// A signed-in session of the console: the browser holds a random token in a cookie; the store
/// keeps the token's SHA-256, the key it was opened with (by the key's hash, so that a revoked or
/// expired key closes it), its CSRF token and when it ends.
public struct ConsoleSession: Sendable, Equatable {
    /// SHA-256 of the cookie's token, hex.
    public var id: String
    /// The API key's hash (``APIKeyRecord/hash``).
    public var keyHash: String
    public var csrfToken: String
    public var createdAt: Date
    public var expiresAt: Date
    /// Set by signing out: the server ended it.
    public var endedAt: Date?

    public init(id: String, keyHash: String, csrfToken: String, createdAt: Date, expiresAt: Date, endedAt: Date? = nil) {
        self.id = id
        self.keyHash = keyHash
        self.csrfToken = csrfToken
        self.createdAt = createdAt
        self.expiresAt = expiresAt
        self.endedAt = endedAt
    }

    /// Whether it still signs requests in at `now`.
    public func isOpen(at now: Date) -> Bool { endedAt == nil && now < expiresAt }
}
