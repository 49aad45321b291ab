import BatonConfig
import BatonOAuth
import BatonTestSupport
import BatonTokens
import XCTest

/// ``OAuthTokenProvider`` against the fake provider: what reaches the refresh protocol when a
/// 2xx answer is unusable. No Redis needed.
final class OAuthTokenProviderTests: XCTestCase {
    private var provider: FakeOAuthProvider!

    override func setUpWithError() throws {
        provider = try FakeOAuthProvider.start(lifetime: 30)
    }

    override func tearDown() {
        provider?.stop()
    }

    private func service() throws -> ServiceConfiguration {
        let json = TestConfiguration().service("my-api", tokenURL: provider.tokenURL, ["request_timeout": "5s"]).json
        return try BatonConfiguration.parse(Array(json.utf8), environment: TestConfiguration.environment).services[0]
    }

    func testAMalformedSuccessHandsTheRotatedRefreshTokenToTheRefreshProtocol() async throws {
        let oauth = OAuthTokenProvider(service: try service())
        let seeded = try provider.seedRefreshToken()
        try provider.setMode("access_token_number", count: 1)
        do {
            _ = try await oauth.fetchToken(service: "my-api", refreshToken: seeded, now: 1_800_000_000_000)
            XCTFail("an access_token that is a number is not a token response")
        } catch let failure as ProviderFailure {
            guard case .protocolError(let description, let recovered?) = failure else { return XCTFail("\(failure)") }
            XCTAssertEqual(failure.recoveredRefreshToken, recovered)
            XCTAssertNotEqual(recovered, seeded)
            XCTAssertEqual(failure.code, "protocol_error")
            for text in [
                description, failure.detail, failure.description, String(reflecting: failure),
                "\(RefreshError.provider(service: "my-api", failure: failure))",
            ] {
                XCTAssertFalse(text.contains(recovered), text)
                XCTAssertFalse(text.contains(seeded), text)
            }
            // It is the provider's live token: the next refresh with it succeeds.
            let next = try await oauth.fetchToken(service: "my-api", refreshToken: recovered, now: 1_800_000_000_000)
            XCTAssertNotNil(next.rotatedRefreshToken)
        }
    }

    func testOtherFailuresRecoverNothing() async throws {
        let oauth = OAuthTokenProvider(service: try service())
        for mode in ["non_json", "server_error", "invalid_grant"] {
            try provider.setMode(mode, count: 1)
            do {
                _ = try await oauth.fetchToken(
                    service: "my-api", refreshToken: try provider.seedRefreshToken(), now: 1_800_000_000_000)
                XCTFail(mode)
            } catch let failure as ProviderFailure {
                XCTAssertNil(failure.recoveredRefreshToken, mode)
            }
        }
        XCTAssertNil(
            ProviderFailure(TokenEndpointError.protocolError(status: 200, description: "x")).recoveredRefreshToken)
        XCTAssertEqual(
            ProviderFailure(
                TokenEndpointError.protocolError(status: 200, description: "x", recoveredRefreshToken: "rt-1")
            ).recoveredRefreshToken, "rt-1")
    }
}
