import BatonRedis

/// What the refresh protocol needs from an OAuth token endpoint: one call that exchanges the
/// current refresh token (or client credentials) for a new access token.
///
/// `BatonOAuth`'s libcurl client is adapted to this by ``OAuthTokenProvider``; keeping the
/// protocol this small keeps the refresh protocol free of HTTP details.
public protocol TokenProvider: Sendable {
    /// Requests a new token for `service`.
    /// - Parameters:
    ///   - refreshToken: the current refresh token, or `nil` for the `client_credentials` grant.
    ///   - now: the Redis server's clock (ms), to turn `expires_in` into `expiresAt`.
    /// - Throws: ``ProviderFailure``.
    func fetchToken(service: String, refreshToken: String?, now: Int64) async throws -> ProviderToken

    /// Whether a fallback client secret is configured (``fetchToken(service:refreshToken:now:credential:)``
    /// with `.fallback` may be tried once after `invalid_client`). Default: `false`.
    var hasFallbackCredential: Bool { get }

    /// Like ``fetchToken(service:refreshToken:now:)``, authenticating with `credential`.
    /// Default: the primary call, whatever `credential` says.
    func fetchToken(service: String, refreshToken: String?, now: Int64, credential: ClientCredential) async throws
        -> ProviderToken
}

/// Which configured client secret a token request authenticates with.
public enum ClientCredential: String, Sendable {
    /// `client_secret_env` / `client_secret_file`.
    case primary
    /// `client_secret_fallback_env` / `client_secret_fallback_file`.
    case fallback
}

extension TokenProvider {
    public var hasFallbackCredential: Bool { false }

    public func fetchToken(service: String, refreshToken: String?, now: Int64, credential: ClientCredential)
        async throws -> ProviderToken
    {
        try await fetchToken(service: service, refreshToken: refreshToken, now: now)
    }
}

/// A token as the provider issued it.
public struct ProviderToken: Sendable, Hashable {
    /// The access token.
    public var accessToken: String
    /// The token type, normalised (`Bearer`).
    public var tokenType: String
    /// When it expires (ms since the epoch, server clock).
    public var expiresAt: Int64
    /// The granted scope, if the provider said.
    public var scope: String?
    /// A new refresh token when the provider rotated it; `nil` when the old one stays valid.
    public var rotatedRefreshToken: String?

    /// Creates a token.
    public init(accessToken: String, tokenType: String, expiresAt: Int64, scope: String?, rotatedRefreshToken: String?)
    {
        self.accessToken = accessToken
        self.tokenType = tokenType
        self.expiresAt = expiresAt
        self.scope = scope
        self.rotatedRefreshToken = rotatedRefreshToken
    }
}

/// Why a provider call failed, classified by what to do about it.
public enum ProviderFailure: Error, Sendable, CustomStringConvertible {
    /// `invalid_grant`: the refresh token is dead; a human must re-authorise.
    case needsReauthorization(code: String, description: String)
    /// `invalid_client`, `unauthorized_client` and friends: fix the configuration.
    case configuration(code: String, description: String)
    /// Rate limited, unavailable, timed out or unreachable: retry later (after `retryAfter` when
    /// the provider said).
    case unavailable(code: String, description: String, retryAfter: Duration?)
    /// The provider answered something that is not a token response.
    ///
    /// `recoveredRefreshToken`: a refresh token found in that answer (a 2xx whose access token
    /// was missing or malformed). The provider may already have rotated the refresh token, so
    /// the refresh protocol should persist this one as the new refresh token. It never appears
    /// in ``description`` or ``detail``. Default: `nil`.
    case protocolError(description: String, recoveredRefreshToken: String? = nil)

    /// The refresh token recovered from an unusable provider answer, if any (see
    /// ``protocolError(description:recoveredRefreshToken:)``); `nil` for every other case.
    public var recoveredRefreshToken: String? {
        if case .protocolError(_, let token) = self { return token }
        return nil
    }

    /// The short code recorded in `last_error.code` and events.
    public var code: String {
        switch self {
        case .needsReauthorization(let code, _), .configuration(let code, _), .unavailable(let code, _, _): return code
        case .protocolError: return "protocol_error"
        }
    }

    /// The provider's own words (its `error_description`), for `last_error.description`.
    public var detail: String {
        switch self {
        case .needsReauthorization(_, let description), .configuration(_, let description),
            .unavailable(_, let description, _),
            .protocolError(let description, _):
            return description
        }
    }

    public var description: String {
        switch self {
        case .needsReauthorization(let code, let description):
            return "the provider rejected the refresh token (\(code): \(description))"
        case .configuration(let code, let description):
            return
                "the provider rejected the client (\(code): \(description)): check client_id, the client secret and auth_method in the config"
        case .unavailable(let code, let description, let retryAfter):
            let wait = retryAfter.map { "; retry after \($0.shortDescription)" } ?? ""
            return "the provider is unavailable (\(code): \(description))\(wait)"
        case .protocolError(let description, _):
            return "the provider's answer is not a valid token response: \(description)"
        }
    }
}
