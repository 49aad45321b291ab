/// A failed authorization-code exchange (`baton seed --authorization-code-file`), classified for
/// the person who has just authorised: the provider's errors mean something else here than in a
/// refresh (`invalid_grant` is about the code, not a refresh token; `invalid_request` is usually
/// about the redirect URI or the PKCE verifier, not the client's credentials).
public enum AuthorizationCodeFailure: Error, Sendable, Equatable, CustomStringConvertible {
    /// `invalid_grant`: the code is used, expired, or was issued for another client, redirect URI
    /// or code verifier. Authorise again and exchange the new code at once.
    case codeRejected(description: String)
    /// `invalid_request`: the exchange does not match the authorization request (most often the
    /// redirect URI, or a missing or wrong code verifier).
    case requestRejected(description: String, status: Int, redirectURI: String)
    /// Any other failure, classified as for a refresh (the client's credentials, an unavailable
    /// provider, an answer that is not a token response).
    case endpoint(TokenEndpointError)

    /// Classifies `error`, the answer to an exchange that sent `redirectURI`.
    public init(_ error: TokenEndpointError, redirectURI: String) {
        switch error {
        case .invalidGrant(let description):
            self = .codeRejected(description: description)
        case .rejectedConfiguration("invalid_request", let description, let status):
            self = .requestRejected(description: description, status: status, redirectURI: redirectURI)
        default:
            self = .endpoint(error)
        }
    }

    /// The OAuth error code or Baton's class name.
    public var code: String {
        switch self {
        case .codeRejected: return "invalid_grant"
        case .requestRejected: return "invalid_request"
        case .endpoint(let error): return error.code
        }
    }

    public var description: String {
        switch self {
        case .codeRejected(let description):
            return
                "the provider rejected the authorization code (\(TokenEndpointError.stated("invalid_grant", description))): "
                + "a code works once, for a short time, and only with the client, redirect URI and code verifier of "
                + "its authorization request. Authorise again and run `baton seed` with the new code at once"
        case .requestRejected(let description, let status, let redirectURI):
            return
                "the provider refused the authorization code request "
                + "(\(TokenEndpointError.stated("invalid_request (HTTP \(status))", description))): check that "
                + "--redirect-uri ('\(redirectURI)') is exactly the redirect_uri of the authorization request, and "
                + "that --code-verifier-file holds its PKCE code verifier if it used one"
        case .endpoint(let error):
            return "exchanging the authorization code failed: \(error)"
        }
    }
}
