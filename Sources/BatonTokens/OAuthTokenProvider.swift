import BatonConfig
import BatonOAuth
import BatonSupport
import Foundation

/// A ``TokenProvider`` backed by `BatonOAuth`'s libcurl client and one service's configuration.
///
/// libcurl blocks, so each request runs on a thread of its own and the calling task suspends:
/// a slow provider never parks a thread of Swift's cooperative pool. (The coordinator bounds how
/// many requests are in flight.)
public struct OAuthTokenProvider: TokenProvider {
    /// The service's configuration (token URL, client, timeouts).
    public let service: ServiceConfiguration
    private let client = TokenEndpointClient()

    /// Creates a provider for `service`.
    public init(service: ServiceConfiguration) {
        self.service = service
    }

    public var hasFallbackCredential: Bool { service.clientSecretFallback != nil }

    public func fetchToken(service name: String, refreshToken: String?, now: Int64) async throws -> ProviderToken {
        try await fetchToken(service: name, refreshToken: refreshToken, now: now, credential: .primary)
    }

    public func fetchToken(service name: String, refreshToken: String?, now: Int64, credential: ClientCredential)
        async throws -> ProviderToken
    {
        let grant: TokenGrant
        switch (service.grant, refreshToken) {
        case (.clientCredentials, _): grant = .clientCredentials
        case (.refreshToken, let token?): grant = .refreshToken(Secret(token))
        case (.refreshToken, nil):
            throw ProviderFailure.needsReauthorization(code: "no_refresh_token", description: "no refresh token stored")
        }
        let service = self.service
        let client = self.client
        let result = await runOnDedicatedThread(named: "baton-token-request") {
            client.requestToken(grant, for: service, now: now, useFallbackSecret: credential == .fallback)
        }
        switch result {
        case .success(let response):
            return ProviderToken(
                accessToken: response.accessToken, tokenType: response.tokenType, expiresAt: response.expiresAt,
                scope: response.scope,
                rotatedRefreshToken: response.refreshToken == refreshToken ? nil : response.refreshToken)
        case .failure(let error):
            var failure = ProviderFailure(error)
            if case .protocolError(let description, let recovered?) = failure, recovered == refreshToken {
                // The provider sent back the token Baton sent: nothing was rotated, nothing to persist.
                failure = .protocolError(description: description, recoveredRefreshToken: nil)
            }
            throw failure
        }
    }
}

extension ProviderFailure {
    /// Classifies a token-endpoint error by what the refresh protocol does about it.
    public init(_ error: TokenEndpointError) {
        // `code: detail` is how failures are shown and recorded: a provider that sent a code alone
        // gets a detail that says so, never its code repeated (`invalid_grant: invalid_grant`).
        let stated = { (description: String) in description.isEmpty ? "no error_description" : description }
        switch error {
        case .invalidGrant(let description):
            self = .needsReauthorization(code: "invalid_grant", description: stated(description))
        case .rejectedConfiguration(let code, let description, _):
            self = .configuration(code: code, description: stated(description))
        case .rateLimited(_, let retryAfter, let description):
            self = .unavailable(code: error.code, description: description, retryAfter: retryAfter)
        case .serverError, .transport:
            self = .unavailable(code: error.code, description: error.description, retryAfter: nil)
        case .protocolError(_, let description, let recoveredRefreshToken):
            self = .protocolError(description: description, recoveredRefreshToken: recoveredRefreshToken)
        }
    }
}

extension ServiceConfiguration {
    /// This service's client fingerprint (``SecretEnvelope/clientFingerprint(tokenURL:clientID:grant:)``).
    public var clientFingerprint: String {
        SecretEnvelope.clientFingerprint(
            tokenURL: tokenURL.absoluteString, clientID: clientID,
            grant: grant == .refreshToken ? "refresh_token" : "client_credentials")
    }
}

extension RefreshSettings {
    /// The settings a service's configuration implies.
    public init(_ service: ServiceConfiguration, configuration: BatonConfiguration) {
        self.init(
            refreshBuffer: service.refreshBuffer, usesRefreshToken: service.grant == .refreshToken,
            lockTTL: configuration.lockTTL, lockWait: configuration.lockWait, requestTimeout: service.requestTimeout,
            clientFingerprint: service.clientFingerprint)
    }
}
