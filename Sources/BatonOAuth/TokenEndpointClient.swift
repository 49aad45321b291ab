import BatonConfig
import Foundation

/// What to exchange at the token endpoint.
public enum TokenGrant: Sendable {
    /// RFC 6749 §6: a refresh token for a new access token (and maybe a rotated refresh token).
    case refreshToken(Secret)
    /// RFC 6749 §4.4: the client's own credentials.
    case clientCredentials
    /// RFC 6749 §4.1.3 with PKCE (RFC 7636): a one-time authorization code, for seeding.
    case authorizationCode(code: Secret, redirectURI: String, codeVerifier: Secret?)
}

/// The OAuth2 token-endpoint client over libcurl. Blocking: call it from a thread that may block
/// (the token layer runs it on its own threads, never on Swift's cooperative pool).
public struct TokenEndpointClient: Sendable {
    /// The response body cap (1 MiB): a larger answer is a protocol error, never a crash.
    public static let maxResponseBytes = 1 << 20

    /// Creates a client.
    public init() {}

    /// Requests a token for `service`.
    /// - Parameters:
    ///   - now: the Redis server's clock (ms): expiry is computed from it, not the host's.
    ///   - useFallbackSecret: authenticate with ``ServiceConfiguration/clientSecretFallback`` instead of
    ///     the primary secret (the caller retries this way once after `invalid_client`).
    /// - Returns: the token, or a classified ``TokenEndpointError``.
    public func requestToken(
        _ grant: TokenGrant, for service: ServiceConfiguration, now: Int64, useFallbackSecret: Bool = false
    ) -> Result<TokenResponse, TokenEndpointError> {
        var form: [(String, String)] = []
        var secrets: [String] = []
        switch grant {
        case .refreshToken(let token):
            form += [("grant_type", "refresh_token"), ("refresh_token", token.reveal())]
            secrets.append(token.reveal())
        case .clientCredentials:
            form.append(("grant_type", "client_credentials"))
        case .authorizationCode(let code, let redirectURI, let verifier):
            form += [("grant_type", "authorization_code"), ("code", code.reveal()), ("redirect_uri", redirectURI)]
            secrets.append(code.reveal())
            if let verifier {
                form.append(("code_verifier", verifier.reveal()))
                secrets.append(verifier.reveal())
            }
        }
        if let scope = service.scope { form.append(("scope", scope)) }
        form += service.extraParameters.map { ($0.name, $0.value) }

        var headers = ["Content-Type: application/x-www-form-urlencoded", "Accept: application/json", "Expect:"]
        let clientSecret = useFallbackSecret ? service.clientSecretFallback : service.clientSecret
        switch (service.authMethod, clientSecret) {
        case (.clientSecretBasic, let secret?):
            let credentials = FormEncoding.encode(service.clientID) + ":" + FormEncoding.encode(secret.reveal())
            headers.append("Authorization: Basic " + Data(credentials.utf8).base64EncodedString())
            secrets.append(secret.reveal())
        case (_, let secret?):
            form += [("client_id", service.clientID), ("client_secret", secret.reveal())]
            secrets.append(secret.reveal())
        case (_, nil):
            form.append(("client_id", service.clientID))  // a public client identifies itself
        }

        guard let request = HTTPPost() else {
            return .failure(.transport(description: "libcurl could not create a handle"))
        }
        do throws(HTTPPost.Failure) {
            let response = try request.perform(
                url: service.tokenURL.absoluteString, body: Array(FormEncoding.encode(form).utf8), headers: headers,
                connectTimeout: service.connectTimeout, totalTimeout: service.requestTimeout,
                maxBodyBytes: Self.maxResponseBytes)
            return TokenResponseParser.parse(
                status: response.status, headers: response.headers, body: response.body, now: now,
                defaultLifetime: service.defaultLifetime, secrets: secrets)
        } catch {
            switch error {
            case .bodyTooLarge(let limit):
                // Not quoted: a token endpoint's answer may hold freshly issued tokens.
                return .failure(
                    .protocolError(
                        status: 200, description: "the response is larger than \(limit) bytes; the transfer was aborted"
                    ))
            case .transport(_, let message):
                return .failure(.transport(description: "\(message) (\(service.tokenURL.host ?? "?"))"))
            case .optionRejected(let option, _, let message):
                return .failure(
                    .transport(description: "libcurl rejected \(option): \(message) (\(service.tokenURL.host ?? "?"))"))
            }
        }
    }
}
