import BatonConfig
import BatonTestSupport
import Foundation
import XCTest

@testable import BatonOAuth

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

    private func service(
        auth: String = "client_secret_post", grant: String = "refresh_token", extra: String = "",
        timeout: String = "15s", secret: String = FakeOAuthProvider.clientSecret
    ) throws -> ServiceConfiguration {
        let json = """
            {"lock_ttl": "60s", "services": {"svc": {"token_url": "\(provider.tokenURL)", "client_id": "\(FakeOAuthProvider.clientID)",
             "client_secret_env": "SECRET", "auth_method": "\(auth)", "grant": "\(grant)", "scope": "read write",
             "request_timeout": "\(timeout)", "connect_timeout": "1s", "default_lifetime": "2h" \(extra)}}}
            """
        return try BatonConfiguration.parse(
            Array(json.utf8),
            environment: ["SECRET": secret, "BATON_ENCRYPTION_KEYS": TestConfiguration.encryptionKeys]
        ).services[0]
    }

    private func refresh(_ service: ServiceConfiguration, token: String? = nil) throws -> Result<
        TokenResponse, TokenEndpointError
    > {
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
        XCTAssertEqual(
            try refresh(svc, token: first),
            .failure(.invalidGrant(description: "refresh token is invalid, expired or already used")))
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
        _ = try refresh(
            try service(
                auth: "client_secret_post",
                extra: ", \"extra_params\": {\"audience\": \"https://api.example.com\"}, \"resource\": \"urn:r\"")
        ).get()
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
        let response = try client.requestToken(
            .clientCredentials, for: try service(grant: "client_credentials"), now: now
        ).get()
        XCTAssertNil(response.refreshToken)
        XCTAssertEqual((try provider.stats()["calls"] as? [String: Int])?["client_credentials"], 1)
    }

    func testAuthorizationCodeWithPKCE() throws {
        let verifier = PKCE.makeVerifier()
        XCTAssertEqual(verifier.count, 43)
        // Cross-checked with Python: base64.urlsafe_b64encode(hashlib.sha256(v).digest()).rstrip(b"=").
        XCTAssertEqual(
            PKCE.challenge(for: "dBjftJeZ4CVP-mJ92TuxzLO4uGIUjgLDxAMg6ASgIR0"),
            "MuBaJYd-NJ1noS6Rtivys4I5HkqY4HPttXVMRka6e3E")
        let svc = try service()
        let code = try provider.issueCode(challenge: PKCE.challenge(for: verifier), redirectURI: "http://localhost/cb")
        let response = try client.requestToken(
            .authorizationCode(code: Secret(code), redirectURI: "http://localhost/cb", codeVerifier: Secret(verifier)),
            for: svc, now: now
        ).get()
        XCTAssertNotNil(response.refreshToken)
        let wrong = try provider.issueCode(challenge: PKCE.challenge(for: verifier), redirectURI: "http://localhost/cb")
        let rejected = client.requestToken(
            .authorizationCode(
                code: Secret(wrong), redirectURI: "http://localhost/cb",
                codeVerifier: Secret("not-the-verifier-at-all-xxxxxxxxxxxxxxxxxxx")),
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
        guard case .failure(.rejectedConfiguration("invalid_client", _, 401)) = try refresh(svc) else {
            return XCTFail()
        }
        try provider.setMode("unauthorized_client", count: 1)
        guard case .failure(.rejectedConfiguration("unauthorized_client", _, 400)) = try refresh(svc) else {
            return XCTFail()
        }
        try provider.setMode("rate_limited", count: 1, retryAfter: "7")
        XCTAssertEqual(
            try refresh(svc), .failure(.rateLimited(status: 429, retryAfter: .seconds(7), description: "slow down")))
        let date = Date().addingTimeInterval(30)
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.timeZone = TimeZone(identifier: "GMT")
        formatter.dateFormat = "EEE, dd MMM yyyy HH:mm:ss 'GMT'"
        try provider.setMode("unavailable", count: 1, retryAfter: formatter.string(from: date))
        guard
            case .failure(.rateLimited(503, let retryAfter?, _)) = client.requestToken(
                .refreshToken(Secret(try provider.seedRefreshToken())), for: svc,
                now: Int64(Date().timeIntervalSince1970 * 1000))
        else { return XCTFail() }
        XCTAssertGreaterThan(retryAfter, .seconds(25))
        XCTAssertLessThanOrEqual(retryAfter, .seconds(31))
        try provider.setMode("server_error", count: 1)
        guard case .failure(let serverError) = try refresh(svc), case .serverError(500, _) = serverError else {
            return XCTFail()
        }
        XCTAssertTrue(serverError.isRetryable)
        try provider.setMode("non_json", count: 1)
        guard case .failure(.protocolError(200, let detail, nil)) = try refresh(svc) else { return XCTFail() }
        XCTAssertFalse(detail.contains("Welcome"), "a 2xx body is described, never quoted: \(detail)")
        XCTAssertTrue(detail.contains("content-type text/html"), detail)
        try provider.setMode("missing_access_token", count: 1)
        guard case .failure(.protocolError(200, let missing, let recovered?)) = try refresh(svc) else {
            return XCTFail()
        }
        XCTAssertTrue(missing.contains("no access_token"), missing)
        XCTAssertFalse(missing.contains(recovered), missing)
    }

    func testOversizedBodyIsAProtocolErrorNotACrash() throws {
        try provider.setMode("oversized", count: 1)
        guard case .failure(.protocolError(_, let detail, _)) = try refresh(try service()) else { return XCTFail() }
        XCTAssertTrue(detail.contains("larger than 1048576 bytes"), detail)
        XCTAssertFalse(detail.contains("access_token"), "the body holds tokens: never quoted: \(detail)")
        XCTAssertLessThan(detail.count, 400)
    }

    func testSlowProviderTimesOutAsTransient() throws {
        try provider.setMode("normal", count: 1, delay: 3)
        let started = Date()
        guard case .failure(let error) = try refresh(try service(timeout: "1s")), case .transport(let detail) = error
        else { return XCTFail() }
        XCTAssertTrue(error.isRetryable)
        XCTAssertTrue(detail.lowercased().contains("timeout") || detail.lowercased().contains("timed out"), detail)
        XCTAssertLessThan(Date().timeIntervalSince(started), 2.5)
    }

    func testConnectionRefusedIsTransient() throws {
        let svc = try service()
        provider.stop()
        guard
            case .failure(.transport(let detail)) = client.requestToken(
                .refreshToken(Secret("rt-whatever")), for: svc, now: now)
        else { return XCTFail() }
        XCTAssertTrue(detail.contains("127.0.0.1"), detail)
    }

    func testNoSecretInAnyError() throws {
        let svc = try service(secret: "wrong-client-secret-value")
        let refreshToken = try provider.seedRefreshToken()
        for mode in [
            "invalid_grant", "invalid_client", "rate_limited", "unavailable", "server_error", "non_json", "oversized",
            "normal",
        ] {
            try provider.setMode(mode, count: 1)
            let result = client.requestToken(.refreshToken(Secret(refreshToken)), for: svc, now: now)
            guard case .failure(let error) = result else {
                return XCTFail("\(mode) should fail: the client secret is wrong")
            }
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
        XCTAssertNil(TokenResponseParser.jwtExpiry("opaque-token", now: 0))
    }

    /// A 2xx whose access token is malformed: the provider has rotated the refresh token, and the
    /// error must carry the new one out (without printing it), or the credential is lost.
    func testMalformedSuccessKeepsTheRotatedRefreshTokenAndQuotesNoToken() throws {
        let svc = try service()
        let first = try provider.seedRefreshToken()
        try provider.setMode("access_token_number", count: 1)
        let result = try refresh(svc, token: first)
        guard case .failure(let error) = result, case .protocolError(200, let detail, let recovered?) = error else {
            return XCTFail("expected a protocol error with a recovered refresh token, got \(result)")
        }
        XCTAssertTrue(recovered.hasPrefix("rt-"))
        XCTAssertNotEqual(recovered, first, "the provider rotated it")
        XCTAssertEqual(error.recoveredRefreshToken, recovered)
        let text = "\(error) \(String(reflecting: error)) \(detail)"
        XCTAssertFalse(text.contains(recovered), text)
        XCTAssertFalse(text.contains("4242424242"), text)
        XCTAssertTrue(detail.contains("access_token: number"), detail)
        XCTAssertTrue(detail.contains("refresh_token: string"), detail)
        // The recovered token is the live one: the provider accepts it (and the old one is dead).
        let next = try refresh(svc, token: recovered).get()
        let live = try XCTUnwrap(next.refreshToken)

        try provider.setMode("html_with_tokens", count: 1)
        guard case .failure(let html) = try refresh(svc, token: live),
            case .protocolError(200, let htmlDetail, nil) = html
        else {
            return XCTFail("an HTML 2xx is a protocol error")
        }
        for leak in ["at-", "rt-", "Signed in", live] {
            XCTAssertFalse("\(html)".contains(leak), "\(leak) quoted: \(html)")
        }
        XCTAssertTrue(htmlDetail.contains("content-type text/html"), htmlDetail)
    }

    func testOverflowingExpiresInFallsBackToTheDefaultLifetime() throws {
        try provider.setMode("expires_in_overflow", count: 1)
        let response = try refresh(try service()).get()
        XCTAssertEqual(response.expirySource, .defaultLifetime)
        XCTAssertEqual(response.expiresAt, now + 7_200_000)
        XCTAssertNotNil(response.refreshToken, "the rotated refresh token is kept")
    }
}

/// ``TokenResponseParser`` on hostile 2xx bodies: no server needed.
final class MalformedTokenResponseTests: XCTestCase {
    private let now: Int64 = 1_800_000_000_000
    private let defaultLifetime = Duration.seconds(3600)

    private func parse(_ body: String, contentType: String = "application/json", status: Int = 200) -> Result<
        TokenResponse, TokenEndpointError
    > {
        TokenResponseParser.parse(
            status: status, headers: ["content-type": contentType], body: Array(body.utf8), now: now,
            defaultLifetime: defaultLifetime, secrets: [])
    }

    private func jwt(_ claims: String) -> String {
        func encode(_ text: String) -> String {
            Data(text.utf8).base64EncodedString().replacingOccurrences(of: "+", with: "-").replacingOccurrences(
                of: "/", with: "_"
            )
            .replacingOccurrences(of: "=", with: "")
        }
        return encode(#"{"alg":"none"}"#) + "." + encode(claims) + ".sig"
    }

    func testUnusableExpiresInFallsBackToTheDefaultLifetime() throws {
        for expiresIn in [
            "1e400", "-1e400", "\"inf\"", "\"-inf\"", "\"nan\"", "\"0x10\"", "-5", "0", "9.3e15", "9300000000000000",
            "\"9.3e15\"", "1e-400", "true", "null", "{}",
        ] {
            let body = #"{"access_token":"at-xyz","expires_in":"# + expiresIn + #","refresh_token":"rt-new"}"#
            let response = try parse(body).get()
            XCTAssertEqual(response.expirySource, .defaultLifetime, expiresIn)
            XCTAssertEqual(response.expiresAt, now + 3_600_000, expiresIn)
            XCTAssertEqual(response.refreshToken, "rt-new", expiresIn)
        }
        // Sane values still count, up to the ten-year cap.
        XCTAssertEqual(try parse(#"{"access_token":"a","expires_in":1.5}"#).get().expiresAt, now + 1_500)
        XCTAssertEqual(try parse(#"{"access_token":"a","expires_in":"3600"}"#).get().expiresAt, now + 3_600_000)
        let cap = TokenResponse.maximumLifetime.components.seconds
        XCTAssertEqual(try parse(#"{"access_token":"a","expires_in":\#(cap)}"#).get().expirySource, .expiresIn)
        XCTAssertEqual(
            try parse(#"{"access_token":"a","expires_in":\#(cap + 1)}"#).get().expirySource, .defaultLifetime)
    }

    func testUnusableJWTExpFallsBackToTheDefaultLifetime() throws {
        for exp in ["1e300", "1e400", "-1", "9.3e15", "\"inf\"", "\"soon\""] {
            let token = jwt(#"{"sub":"x","exp":"# + exp + "}")
            let response = try parse(#"{"access_token":""# + token + #""}"#).get()
            XCTAssertEqual(response.expirySource, .defaultLifetime, exp)
            XCTAssertEqual(response.expiresAt, now + 3_600_000, exp)
        }
        let exp = now / 1000 + 600
        let valid = try parse(#"{"access_token":""# + jwt(#"{"exp":\#(exp)}"#) + #""}"#).get()
        XCTAssertEqual(valid.expirySource, .jwtExp)
        XCTAssertEqual(valid.expiresAt, exp * 1000)
    }

    func testAHugeDefaultLifetimeDoesNotTrap() throws {
        let response = try TokenResponseParser.parse(
            status: 200, headers: [:], body: Array(#"{"access_token":"a"}"#.utf8), now: now,
            defaultLifetime: .seconds(Int64.max), secrets: []
        ).get()
        XCTAssertEqual(response.expiresAt, now + TokenResponse.maximumLifetime.components.seconds * 1000)
    }

    func testAnHTMLSuccessIsDescribedNotQuoted() {
        let body =
            "<html><body>Welcome! access_token=at-SECRET-123 refresh_token=rt-SECRET-456 "
            + String(repeating: "x", count: 300) + "</body></html>"
        guard case .failure(let error) = parse(body, contentType: "text/html; charset=utf-8") else { return XCTFail() }
        let text = "\(error)"
        XCTAssertNil(error.recoveredRefreshToken, "not JSON or form-encoded: nothing to recover")
        for leak in ["SECRET", "Welcome", "html>"] { XCTAssertFalse(text.contains(leak), text) }
        XCTAssertTrue(text.contains("\(body.utf8.count) bytes"), text)
        XCTAssertTrue(text.contains("content-type text/html"), text)
    }

    func testWrongTypedAccessTokenRecoversTheRefreshToken() {
        let cases: [(body: String, contentType: String, shape: String)] = [
            (
                #"{"access_token":12345678901234,"refresh_token":"rt-rotated-json","expires_in":3600}"#,
                "application/json",
                "{access_token: number, refresh_token: string, expires_in: number}"
            ),
            (
                #"{"access_token":{"value":"at-nested-secret"},"refresh_token":"rt-rotated-json"}"#, "application/json",
                "access_token: object"
            ),
            (#"{"access_token":"","refresh_token":"rt-rotated-json"}"#, "application/json", "access_token: string"),
            (
                #"{"token_type":"Bearer","refresh_token":"rt-rotated-json"}"#, "application/json",
                "{token_type: string, refresh_token: string}"
            ),
            (
                "refresh_token=rt-rotated-form&token_type=bearer&expires_in=3600", "application/x-www-form-urlencoded",
                "form-encoded {refresh_token: string, token_type: string, expires_in: string}"
            ),
            ("access_token=&refresh_token=rt-rotated-form", "application/x-www-form-urlencoded", "access_token: empty"),
        ]
        for (body, contentType, shape) in cases {
            guard case .failure(let error) = parse(body, contentType: contentType),
                case .protocolError(200, let description, let recovered?) = error
            else {
                XCTFail(body)
                continue
            }
            XCTAssertTrue(recovered.hasPrefix("rt-rotated-"), body)
            XCTAssertTrue(body.contains(recovered), body)
            let text = "\(error) \(String(reflecting: error))"
            for leak in ["rt-rotated", "12345678901234", "at-nested-secret"] {
                XCTAssertFalse(text.contains(leak), "\(leak): \(text)")
            }
            XCTAssertTrue(description.contains(shape), "\(description) lacks \(shape)")
        }
    }

    func testARefreshTokenOfTheWrongTypeIsAnErrorWithNothingRecovered() {
        guard case .failure(let error) = parse(#"{"access_token":"at-ok-secret","refresh_token":987654321}"#) else {
            return XCTFail()
        }
        XCTAssertNil(error.recoveredRefreshToken)
        XCTAssertFalse("\(error)".contains("at-ok-secret"))
        XCTAssertFalse("\(error)".contains("987654321"))
        XCTAssertTrue("\(error)".contains("refresh_token is a number"), "\(error)")
    }

    func testKeysThatLookLikeValuesAreNotQuoted() {
        let body = #"{"at-\#(String(repeating: "k", count: 60))":"x","refresh_token":"rt-r"}"#
        guard case .failure(let error) = parse(body) else { return XCTFail() }
        XCTAssertFalse("\(error)".contains("kkkk"), "\(error)")
        XCTAssertTrue("\(error)".contains("<key of 63 characters>"), "\(error)")
    }

    func testRetryAfterFarInTheFutureDoesNotTrap() {
        for value in [
            "Fri, 31 Dec 9999 23:59:59 GMT", "Sat Jan 1 00:00:00 99999999999", "Mon, 01 Jan 0001 00:00:00 GMT",
        ] {
            _ = TokenResponseParser.parseRetryAfter(value, now: now)
        }
    }
}
