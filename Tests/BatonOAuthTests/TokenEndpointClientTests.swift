import BatonConfig
@testable import BatonOAuth
import BatonTestSupport
import Foundation
import XCTest

/// The libcurl token-endpoint client against the fake provider over real HTTP on loopback.
final class TokenEndpointClientTests: XCTestCase {
    private var provider: FakeOAuthProvider!
    private let now: Int64 = 1_800_000_000_000
    private let client = TokenEndpointClient()

    override func setUpWithError() throws {
        provider = try FakeOAuthProvider.start(lifetime: 10)
    }

    override func tearDown() {
        provider.stop()
    }

    private func service(auth: String = "client_secret_post", grant: String = "refresh_token", extra: String = "",
                         timeout: String = "15s", secret: String = FakeOAuthProvider.clientSecret) throws -> ServiceConfiguration {
        let json = """
            {"lock_ttl": "60s", "services": {"svc": {"token_url": "\(provider.tokenURL)", "client_id": "\(FakeOAuthProvider.clientID)",
             "client_secret_env": "SECRET", "auth_method": "\(auth)", "grant": "\(grant)", "scope": "read write",
             "request_timeout": "\(timeout)", "connect_timeout": "1s", "default_lifetime": "2h" \(extra)}}}
            """
        return try BatonConfiguration.parse(Array(json.utf8), environment: ["SECRET": secret]).services[0]
    }

    private func refresh(_ service: ServiceConfiguration, token: String? = nil) throws -> Result<TokenResponse, TokenEndpointError> {
        let refreshToken = try token ?? provider.seedRefreshToken()
        return client.requestToken(.refreshToken(Secret(refreshToken)), for: service, now: now)
    }

    func testRefreshRotatesAndTheOldTokenDies() throws {
        let svc = try service()
        let first = try provider.seedRefreshToken()
        let response = try refresh(svc, token: first).get()
        XCTAssertTrue(response.accessToken.hasPrefix("at-"))
        XCTAssertEqual(response.tokenType, "Bearer")
        XCTAssertEqual(response.expiresAt, now + 10_000)
        XCTAssertEqual(response.expirySource, .expiresIn)
        XCTAssertEqual(response.scope, "read write")
        let rotated = try XCTUnwrap(response.refreshToken)
        XCTAssertNotEqual(rotated, first)
        // The provider invalidated the old token on use: reusing it is invalid_grant.
        XCTAssertEqual(try refresh(svc, token: first), .failure(.invalidGrant(description: "refresh token is invalid, expired or already used")))
        XCTAssertNoThrow(try refresh(svc, token: rotated).get())
        let stats = try provider.stats()
        XCTAssertEqual((stats["calls"] as? [String: Int])?["refresh_token"], 3)
        XCTAssertEqual(stats["invalid_grant"] as? Int, 1)
    }

    func testClientAuthenticationMethodsReachTheProvider() throws {
        _ = try refresh(try service(auth: "client_secret_basic")).get()
        var last = try provider.stats()["last"] as? [String: Any]
        XCTAssertEqual(last?["auth"] as? String, "basic")
        XCTAssertNil((last?["params"] as? [String: String])?["client_id"], "basic sends no credentials in the body")
        _ = try refresh(try service(auth: "client_secret_post", extra: ", \"extra_params\": {\"audience\": \"https://api.example.com\"}, \"resource\": \"urn:r\"")).get()
        last = try provider.stats()["last"] as? [String: Any]
        XCTAssertEqual(last?["auth"] as? String, "post")
        let params = last?["params"] as? [String: String]
        XCTAssertEqual(params?["client_id"], FakeOAuthProvider.clientID)
        XCTAssertEqual(params?["scope"], "read write")
        XCTAssertEqual(params?["audience"], "https://api.example.com")
        XCTAssertEqual(params?["resource"], "urn:r")
        XCTAssertEqual(last?["content_type"] as? String, "application/x-www-form-urlencoded")
    }

    func testClientCredentialsGrant() throws {
        let response = try client.requestToken(.clientCredentials, for: try service(grant: "client_credentials"), now: now).get()
        XCTAssertNil(response.refreshToken)
        XCTAssertEqual((try provider.stats()["calls"] as? [String: Int])?["client_credentials"], 1)
    }

    func testAuthorizationCodeWithPKCE() throws {
        let verifier = PKCE.makeVerifier()
        XCTAssertEqual(verifier.count, 43)
        // Cross-checked with Python: base64.urlsafe_b64encode(hashlib.sha256(v).digest()).rstrip(b"=").
        XCTAssertEqual(PKCE.challenge(for: "dBjftJeZ4CVP-mJ92TuxzLO4uGIUjgLDxAMg6ASgIR0"), "MuBaJYd-NJ1noS6Rtivys4I5HkqY4HPttXVMRka6e3E")
        let svc = try service()
        let code = try provider.issueCode(challenge: PKCE.challenge(for: verifier), redirectURI: "http://localhost/cb")
        let response = try client.requestToken(.authorizationCode(code: Secret(code), redirectURI: "http://localhost/cb", codeVerifier: Secret(verifier)),
                                               for: svc, now: now).get()
        XCTAssertNotNil(response.refreshToken)
        let wrong = try provider.issueCode(challenge: PKCE.challenge(for: verifier), redirectURI: "http://localhost/cb")
        let rejected = client.requestToken(.authorizationCode(code: Secret(wrong), redirectURI: "http://localhost/cb", codeVerifier: Secret("not-the-verifier-at-all-xxxxxxxxxxxxxxxxxxx")),
                                           for: svc, now: now)
        XCTAssertEqual(rejected, .failure(.invalidGrant(description: "PKCE verification failed")))
    }

    func testResponseQuirks() throws {
        let svc = try service()
        try provider.setMode("expires_in_string", count: 1)
        XCTAssertEqual(try refresh(svc).get().expiresAt, now + 10_000)
        try provider.setMode("opaque_no_expires_in", count: 1)
        let opaque = try refresh(svc).get()
        XCTAssertEqual(opaque.expiresAt, now + 7_200_000, "the configured default lifetime")
        XCTAssertEqual(opaque.expirySource, .defaultLifetime)
        try provider.setMode("jwt_no_expires_in", count: 1)
        let jwt = try refresh(svc).get()
        XCTAssertEqual(jwt.expirySource, .jwtExp)
        let hostNow = Int64(Date().timeIntervalSince1970 * 1000)
        XCTAssertLessThan(abs(jwt.expiresAt - (hostNow + 10_000)), 3_000, "the JWT's exp claim")
        try provider.setMode("no_refresh_token", count: 1)
        let kept = try refresh(svc).get()
        XCTAssertNil(kept.refreshToken, "no rotation: keep the old refresh token")
        try provider.setMode("lowercase_token_type", count: 1)
        XCTAssertEqual(try refresh(svc).get().tokenType, "Bearer")
        try provider.setMode("extra_fields", count: 1)
        XCTAssertNotNil(try refresh(svc).get().refreshToken)
        try provider.setMode("form_encoded", count: 1)
        let form = try refresh(svc).get()
        XCTAssertTrue(form.accessToken.hasPrefix("at-"))
        XCTAssertEqual(form.expiresAt, now + 10_000)
        XCTAssertNotNil(form.refreshToken)
    }

    func testErrorClasses() throws {
        let svc = try service()
        try provider.setMode("invalid_client", count: 1)
        guard case .failure(.rejectedConfiguration("invalid_client", _, 401)) = try refresh(svc) else { return XCTFail() }
        try provider.setMode("unauthorized_client", count: 1)
        guard case .failure(.rejectedConfiguration("unauthorized_client", _, 400)) = try refresh(svc) else { return XCTFail() }
        try provider.setMode("rate_limited", count: 1, retryAfter: "7")
        XCTAssertEqual(try refresh(svc), .failure(.rateLimited(status: 429, retryAfter: .seconds(7), description: "slow down")))
        let date = Date().addingTimeInterval(30)
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.timeZone = TimeZone(identifier: "GMT")
        formatter.dateFormat = "EEE, dd MMM yyyy HH:mm:ss 'GMT'"
        try provider.setMode("unavailable", count: 1, retryAfter: formatter.string(from: date))
        guard case .failure(.rateLimited(503, let retryAfter?, _)) = client.requestToken(.refreshToken(Secret(try provider.seedRefreshToken())), for: svc,
                                                                                         now: Int64(Date().timeIntervalSince1970 * 1000)) else { return XCTFail() }
        XCTAssertGreaterThan(retryAfter, .seconds(25))
        XCTAssertLessThanOrEqual(retryAfter, .seconds(31))
        try provider.setMode("server_error", count: 1)
        guard case .failure(let serverError) = try refresh(svc), case .serverError(500, _) = serverError else { return XCTFail() }
        XCTAssertTrue(serverError.isRetryable)
        try provider.setMode("non_json", count: 1)
        guard case .failure(.protocolError(200, let detail)) = try refresh(svc) else { return XCTFail() }
        XCTAssertTrue(detail.contains("<html><body>Welcome"), detail)
        try provider.setMode("missing_access_token", count: 1)
        guard case .failure(.protocolError(200, let missing)) = try refresh(svc) else { return XCTFail() }
        XCTAssertTrue(missing.contains("no access_token"), missing)
    }

    func testOversizedBodyIsAProtocolErrorNotACrash() throws {
        try provider.setMode("oversized", count: 1)
        guard case .failure(.protocolError(_, let detail)) = try refresh(try service()) else { return XCTFail() }
        XCTAssertTrue(detail.contains("larger than 1048576 bytes"), detail)
        XCTAssertLessThan(detail.count, 400)
    }

    func testSlowProviderTimesOutAsTransient() throws {
        try provider.setMode("normal", count: 1, delay: 3)
        let started = Date()
        guard case .failure(let error) = try refresh(try service(timeout: "1s")), case .transport(let detail) = error else { return XCTFail() }
        XCTAssertTrue(error.isRetryable)
        XCTAssertTrue(detail.lowercased().contains("timeout") || detail.lowercased().contains("timed out"), detail)
        XCTAssertLessThan(Date().timeIntervalSince(started), 2.5)
    }

    func testConnectionRefusedIsTransient() throws {
        let svc = try service()
        provider.stop()
        guard case .failure(.transport(let detail)) = client.requestToken(.refreshToken(Secret("rt-whatever")), for: svc, now: now) else { return XCTFail() }
        XCTAssertTrue(detail.contains("127.0.0.1"), detail)
    }

    func testNoSecretInAnyError() throws {
        let svc = try service(secret: "wrong-client-secret-value")
        let refreshToken = try provider.seedRefreshToken()
        for mode in ["invalid_grant", "invalid_client", "rate_limited", "unavailable", "server_error", "non_json", "oversized", "normal"] {
            try provider.setMode(mode, count: 1)
            let result = client.requestToken(.refreshToken(Secret(refreshToken)), for: svc, now: now)
            guard case .failure(let error) = result else { return XCTFail("\(mode) should fail: the client secret is wrong") }
            let text = "\(error) \(String(reflecting: error))"
            XCTAssertFalse(text.contains(refreshToken), "\(mode): \(text)")
            XCTAssertFalse(text.contains("wrong-client-secret-value"), "\(mode): \(text)")
        }
    }

    func testParserUnits() {
        XCTAssertEqual(TokenResponseParser.parseRetryAfter("120", now: 0), .seconds(120))
        XCTAssertNil(TokenResponseParser.parseRetryAfter("soon", now: 0))
        XCTAssertEqual(TokenResponseParser.parseRetryAfter("Thu, 01 Jan 1970 00:01:40 GMT", now: 40_000), .seconds(60))
        XCTAssertEqual(FormEncoding.encode([("a b", "x&y=z/é")]), "a+b=x%26y%3Dz%2F%C3%A9")
        XCTAssertEqual(TokenResponseParser.redact("token rt-123456 leaked", ["rt-123456"]), "token <redacted> leaked")
        XCTAssertNil(TokenResponseParser.jwtExpiry("opaque-token"))
    }
}
