import BatonConfig
import BatonTestSupport
import Foundation
import XCTest

@testable import BatonOAuth

/// Hostile or broken provider answers over real HTTP (the fake provider's fault modes): each is
/// a classified error or a sane token, never a crash, a followed redirect or a printed token.
final class ProviderAnswerTests: XCTestCase {
    private var provider: FakeOAuthProvider!
    private let now: Int64 = 1_800_000_000_000
    private let client = TokenEndpointClient()
    private let clientSecret = "client-secret-never-shown-7Q2"

    override func setUpWithError() throws {
        provider = try FakeOAuthProvider.start(lifetime: 10, clients: ["\(FakeOAuthProvider.clientID):\(clientSecret)"])
    }

    override func tearDown() {
        provider.stop()
    }

    private func service() throws -> ServiceConfiguration {
        let json = """
            {"services": {"svc": {"token_url": "\(provider.tokenURL)", "client_id": "\(FakeOAuthProvider.clientID)",
             "client_secret_env": "SECRET", "request_timeout": "15s", "connect_timeout": "2s", "default_lifetime": "2h"}}}
            """
        return try BatonConfiguration.parse(
            Array(json.utf8), environment: ["SECRET": clientSecret, "BATON_ENCRYPTION_KEYS": TestKeyring.text]
        ).services[0]
    }

    private func refresh(mode: String) throws -> (Result<TokenResponse, TokenEndpointError>, sent: String) {
        let token = try provider.seedRefreshToken()
        try provider.setMode(mode, count: 1)
        return (client.requestToken(.refreshToken(Secret(token)), for: try service(), now: now), token)
    }

    /// Every way `error` can be shown, for leak searches.
    private func shown(_ error: TokenEndpointError) -> String { "\(error) \(String(reflecting: error))" }

    func testARedirectIsNotFollowed() throws {
        let (result, sent) = try refresh(mode: "redirect")
        guard case .failure(let error) = result, case .protocolError(307, _, nil) = error else {
            return XCTFail("\(result)")
        }
        XCTAssertEqual(
            try provider.redirectsFollowed(), 0, "the request (with the secrets) went to the redirect target")
        XCTAssertFalse(shown(error).contains(sent))
        XCTAssertFalse(shown(error).contains(clientSecret))
    }

    func testHTMLInvalidJSONAndHugeBodiesAreProtocolErrorsThatQuoteNothing() throws {
        for (mode, expected) in [
            ("non_json", "content-type text/html"), ("invalid_json", "not JSON (syntax error at line 1"),
            ("oversized", "larger than 1048576 bytes"),
        ] {
            let (result, sent) = try refresh(mode: mode)
            guard case .failure(let error) = result, case .protocolError(200, let detail, nil) = error else {
                XCTFail("\(mode): \(result)")
                continue
            }
            XCTAssertTrue(detail.contains(expected), "\(mode): \(detail)")
            XCTAssertTrue(error.isRetryable, mode)
            for leak in [sent, clientSecret, "Welcome", "at-x", "xxxxxxxx"] {
                XCTAssertFalse(shown(error).contains(leak), "\(mode) shows \(leak): \(shown(error))")
            }
        }
    }

    func testOutOfRangeNumbersNeverTrapAndFallBackToTheDefaultLifetime() throws {
        for (mode, expiresAt) in [
            ("expires_in_negative", now + 7_200_000), ("expires_in_huge", now + 7_200_000),
            ("expires_in_overflow", now + 7_200_000), ("expires_in_fractional", now + 59_750),
            ("expires_in_string", now + 10_000),
        ] {
            let (result, _) = try refresh(mode: mode)
            XCTAssertEqual(try result.get().expiresAt, expiresAt, mode)
            XCTAssertNotNil(try result.get().refreshToken, "\(mode): the rotated refresh token is kept")
        }
    }

    /// A provider that puts freshly issued tokens in a 4xx body (JSON without `error`, or an HTML
    /// page): the error describes the body's keys or quotes it with the tokens blanked out.
    func testATokenInAnErrorBodyIsNeverShown() throws {
        for mode in ["error_with_tokens", "html_error_with_tokens"] {
            let (result, sent) = try refresh(mode: mode)
            guard case .failure(let error) = result, case .protocolError(400, let detail, nil) = error else {
                XCTFail("\(mode): \(result)")
                continue
            }
            let issued = try provider.issuedTokens()
            XCTAssertFalse(issued.isEmpty)
            for leak in issued + [sent, clientSecret] {
                XCTAssertFalse(shown(error).contains(leak), "\(mode) shows a token: \(shown(error))")
            }
            XCTAssertTrue(detail.hasPrefix("unexpected status; body: "), "\(mode): \(detail)")
            XCTAssertTrue(
                detail.contains(mode == "error_with_tokens" ? "refresh_token: string" : "<redacted>"),
                "\(mode): \(detail)")
        }
    }

    func testAnErrorWithoutADescriptionShowsItsCodeOnce() throws {
        let (result, _) = try refresh(mode: "invalid_grant_bare")
        guard case .failure(let error) = result else { return XCTFail("\(result)") }
        XCTAssertEqual(error, .invalidGrant(description: ""))
        XCTAssertEqual(
            "\(error)", "invalid_grant (the refresh token is no longer valid: re-authorise and seed a new one)")
        let described = TokenResponseParser.parse(
            status: 400, headers: [:],
            body: Array(#"{"error":"invalid_grant","error_description":"Token expired"}"#.utf8),
            now: now, defaultLifetime: .seconds(60), secrets: [])
        XCTAssertEqual(described, .failure(.invalidGrant(description: "Token expired")))
        XCTAssertEqual(
            TokenEndpointError.rejectedConfiguration(code: "invalid_scope", description: "", status: 400).description,
            "invalid_scope (HTTP 400) (check client_id, the client secret, auth_method, grant and scope)")
    }

    /// django-oauth-toolkit's answers to a code exchange, in the words of a code exchange.
    func testAuthorizationCodeErrorsAreClassifiedAsSuch() throws {
        let redirect = "http://localhost:9/cb"
        func exchange(_ code: String, redirectURI: String) throws -> AuthorizationCodeFailure? {
            let result = client.requestToken(
                .authorizationCode(code: Secret(code), redirectURI: redirectURI, codeVerifier: nil), for: try service(),
                now: now)
            guard case .failure(let error) = result else { return nil }
            return AuthorizationCodeFailure(error, redirectURI: redirectURI)
        }
        let code = try provider.issueCode(challenge: nil, redirectURI: redirect)
        XCTAssertNil(try exchange(code, redirectURI: redirect), "the first exchange works")
        guard case .codeRejected? = try exchange(code, redirectURI: redirect) else { return XCTFail("a reused code") }
        XCTAssertTrue(
            "\(try exchange(code, redirectURI: redirect)!)".hasPrefix("the provider rejected the authorization code"))

        let other = try provider.issueCode(challenge: nil, redirectURI: redirect)
        let mismatch = try exchange(other, redirectURI: "http://localhost:9/other")
        XCTAssertEqual(
            mismatch,
            .requestRejected(
                description: "Mismatching redirect URI.", status: 400, redirectURI: "http://localhost:9/other"))
        XCTAssertTrue("\(mismatch!)".contains("--redirect-uri ('http://localhost:9/other')"), "\(mismatch!)")
        XCTAssertFalse("\(mismatch!)".contains("client secret"), "not a client-credential problem: \(mismatch!)")
        XCTAssertFalse("\(mismatch!)".contains(other))
    }
}
