import Foundation

/// The access-token record stored as JSON in `prefix:{svc}:token`: what workers read.
///
/// ```json
/// {"access_token":"...","expires_at":1764000000000,"last_error":null,"refreshed_at":1763999400000,
///  "refreshed_by":"host:1234","scope":"read write","service":"my-api","status":"ok",
///  "token_type":"Bearer","version":12}
/// ```
/// Times are milliseconds since the Unix epoch on the Redis server's clock. `version` is the
/// fencing token of the refresh that wrote the record: strictly increasing. There is never a
/// refresh token in it.
public struct TokenRecord: Sendable, Hashable, Codable {
    /// The record's health.
    public enum Status: String, Sendable, Hashable, Codable {
        /// The last refresh succeeded.
        case ok
        /// The last refresh failed for a reason that may pass (provider down, rate limited,
        /// configuration); the access token is served until it expires.
        case refreshingFailed = "refreshing_failed"
        /// The provider rejected the refresh token (`invalid_grant`): a human must re-authorise
        /// and `baton seed` a new one. The access token is served until it expires.
        case needsReauth = "needs_reauth"
    }

    /// Why the last refresh failed.
    public struct LastError: Sendable, Hashable, Codable {
        /// The OAuth error code (`invalid_grant`, ...) or Baton's class (`provider_unavailable`, ...).
        public var code: String
        /// A human-readable description. Never contains a secret.
        public var description: String
        /// When it happened (ms since the epoch, server clock).
        public var at: Int64

        /// Creates an error entry.
        public init(code: String, description: String, at: Int64) {
            self.code = code
            self.description = description
            self.at = at
        }
    }

    /// The service name.
    public var service: String
    /// The access token.
    public var accessToken: String
    /// The token type, normalised (`Bearer`).
    public var tokenType: String
    /// When the access token expires (ms since the epoch, server clock).
    public var expiresAt: Int64
    /// The granted scope, if the provider said.
    public var scope: String?
    /// The fence of the refresh that wrote this record.
    public var version: Int64
    /// When the token was obtained (ms since the epoch, server clock).
    public var refreshedAt: Int64
    /// The replica or process that obtained it (`host:pid` or the `--id` of `baton serve`).
    public var refreshedBy: String
    /// The record's health.
    public var status: Status
    /// Why the last refresh failed, or `nil` after a success.
    public var lastError: LastError?

    /// Creates a record.
    public init(
        service: String, accessToken: String, tokenType: String, expiresAt: Int64, scope: String?,
        version: Int64, refreshedAt: Int64, refreshedBy: String, status: Status = .ok, lastError: LastError? = nil
    ) {
        self.service = service
        self.accessToken = accessToken
        self.tokenType = tokenType
        self.expiresAt = expiresAt
        self.scope = scope
        self.version = version
        self.refreshedAt = refreshedAt
        self.refreshedBy = refreshedBy
        self.status = status
        self.lastError = lastError
    }

    enum CodingKeys: String, CodingKey {
        case service, scope, version, status
        case accessToken = "access_token"
        case tokenType = "token_type"
        case expiresAt = "expires_at"
        case refreshedAt = "refreshed_at"
        case refreshedBy = "refreshed_by"
        case lastError = "last_error"
    }

    /// Encodes every field, `scope` and `last_error` as `null` when absent, so readers always see
    /// the same shape.
    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(service, forKey: .service)
        try container.encode(accessToken, forKey: .accessToken)
        try container.encode(tokenType, forKey: .tokenType)
        try container.encode(expiresAt, forKey: .expiresAt)
        try container.encode(scope, forKey: .scope)
        try container.encode(version, forKey: .version)
        try container.encode(refreshedAt, forKey: .refreshedAt)
        try container.encode(refreshedBy, forKey: .refreshedBy)
        try container.encode(status, forKey: .status)
        try container.encode(lastError, forKey: .lastError)
    }

    /// The record as JSON, keys sorted.
    public func jsonBytes() throws -> [UInt8] {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return Array(try encoder.encode(self))
    }

    /// Parses a record.
    public static func decode(_ bytes: [UInt8]) throws -> TokenRecord {
        try JSONDecoder().decode(TokenRecord.self, from: Data(bytes))
    }

    /// Whether the access token has expired at `now` (ms, server clock).
    public func isExpired(at now: Int64) -> Bool { now >= expiresAt }

    /// Whether the token is due for refresh at `now`: `now >= expires_at - buffer`, where the
    /// buffer is `refreshBuffer` capped at half the token's lifetime, so very short tokens are not
    /// refreshed constantly.
    public func needsRefresh(at now: Int64, refreshBuffer: Duration) -> Bool {
        now >= refreshDueAt(refreshBuffer: refreshBuffer)
    }

    /// When the token becomes due for refresh (see ``needsRefresh(at:refreshBuffer:)``).
    public func refreshDueAt(refreshBuffer: Duration) -> Int64 {
        let lifetime = max(0, expiresAt - refreshedAt)
        let buffer = min(refreshBuffer.milliseconds, lifetime / 2)
        return expiresAt - buffer
    }
}
