/// A token-endpoint failure, classified by what to do about it. Messages quote the provider's
/// `error` and `error_description`, never a secret Baton sent, never a token the provider issued.
public enum TokenEndpointError: Error, Sendable, Equatable, CustomStringConvertible {
    /// `invalid_grant`: the refresh token (or code) is dead. Re-authorise and seed a new one; do not retry.
    case invalidGrant(description: String)
    /// `invalid_client`, `unauthorized_client`, `unsupported_grant_type`, `invalid_scope`,
    /// `invalid_request`: the configuration is wrong. Fix it; retrying will not help.
    case rejectedConfiguration(code: String, description: String, status: Int)
    /// HTTP 429 or 503: wait `retryAfter` when the provider said (Retry-After), then retry.
    case rateLimited(status: Int, retryAfter: Duration?, description: String)
    /// Other 5xx: retry with backoff.
    case serverError(status: Int, description: String)
    /// Timeouts, refused or reset connections, DNS and TLS failures: retry with backoff.
    case transport(description: String)
    /// The answer is not a token response (not JSON, oversized, no access_token, unexpected
    /// status). For a non-2xx status the description quotes the body's first bytes; a 2xx body
    /// holds fresh tokens and is only described by its shape (keys and JSON types, or size and
    /// content type).
    ///
    /// `recoveredRefreshToken` is the non-empty string `refresh_token` of a 2xx answer that was
    /// otherwise unusable (for example `access_token` missing or a number): the provider may have
    /// rotated the refresh token already, and this may be its only copy, so persist it. It never
    /// appears in ``description``. Default: `nil`.
    case protocolError(status: Int, description: String, recoveredRefreshToken: String? = nil)

    /// The refresh token carried by an otherwise unusable 2xx answer, if any (see
    /// ``protocolError(status:description:recoveredRefreshToken:)``); `nil` for every other case.
    public var recoveredRefreshToken: String? {
        if case .protocolError(_, _, let token) = self { return token }
        return nil
    }

    /// Whether retrying later can help.
    public var isRetryable: Bool {
        switch self {
        case .rateLimited, .serverError, .transport, .protocolError: return true
        case .invalidGrant, .rejectedConfiguration: return false
        }
    }

    /// The OAuth error code or Baton's class name, for records and events.
    public var code: String {
        switch self {
        case .invalidGrant: return "invalid_grant"
        case .rejectedConfiguration(let code, _, _): return code
        case .rateLimited(let status, _, _): return status == 429 ? "rate_limited" : "temporarily_unavailable"
        case .serverError(let status, _): return "server_error_\(status)"
        case .transport: return "transport_error"
        case .protocolError: return "protocol_error"
        }
    }

    public var description: String {
        switch self {
        case .invalidGrant(let description):
            return
                "\(Self.stated("invalid_grant", description)) (the refresh token is no longer valid: re-authorise and seed a new one)"
        case .rejectedConfiguration(let code, let description, let status):
            return
                "\(Self.stated("\(code) (HTTP \(status))", description)) (check client_id, the client secret, auth_method, grant and scope)"
        case .rateLimited(let status, let retryAfter, let description):
            return "HTTP \(status): \(description)\(retryAfter.map { " (retry after \($0))" } ?? "")"
        case .serverError(let status, let description):
            return "HTTP \(status) from the token endpoint: \(description)"
        case .transport(let description):
            return "could not reach the token endpoint: \(description)"
        case .protocolError(let status, let description, _):
            return "HTTP \(status), not a token response: \(description)"
        }
    }

    /// `code: description`, or the code alone when the provider gave no description (never
    /// `invalid_grant: invalid_grant`).
    public static func stated(_ code: String, _ description: String) -> String {
        description.isEmpty ? code : "\(code): \(description)"
    }
}
