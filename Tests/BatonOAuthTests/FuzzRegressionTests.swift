import XCTest

@testable import BatonOAuth

/// Inputs `make fuzz` found (docs/FUZZING.md, Findings), kept as tests.
final class TokenResponseFuzzRegressionTests: XCTestCase {
    private let secret = "Fz-refresh-secret-5521"

    private func errorText(status: Int, body: String, contentType: String = "application/json") -> String {
        let result = TokenResponseParser.parse(
            status: status, headers: ["content-type": contentType], body: Array(body.utf8), now: 0,
            defaultLifetime: .seconds(3600), secrets: [secret])
        guard case .failure(let error) = result else {
            XCTFail("HTTP \(status) \(body) parsed as a token")
            return ""
        }
        return "\(error)"
    }

    /// An `error` field holding a secret Baton sent was quoted unredacted (an unknown code, or a
    /// 401/403 answer).
    func testTheErrorCodeIsRedacted() {
        for status in [400, 401, 403] {
            let text = errorText(status: status, body: #"{"error":"invken Fz-refresh-secret-5521 ivoked"}"#)
            XCTAssertFalse(text.contains(secret), text)
            XCTAssertTrue(text.contains("invken <redacted> ivoked"), text)
        }
    }

    /// A non-JSON error body is quoted up to 200 characters: a secret straddling the cut showed
    /// its first characters, because the body was cut before it was redacted.
    func testASecretAcrossTheQuoteLimitIsRedacted() {
        let text = errorText(
            status: 502, body: String(repeating: "x", count: 190) + secret, contentType: "text/plain")
        XCTAssertFalse(text.contains("Fz-refre"), text)
        XCTAssertTrue(text.contains("<redacted>"), text)
    }

    /// A 2xx body is described by its field names, never its values; a bare form field named
    /// like a secret Baton sent was shown as a name.
    func testASecretAsAFieldNameOfA2xxBodyIsRedacted() {
        let text = errorText(
            status: 200, body: "sh_token&reCresi_token=Fz-refresh-secret-5521&client_secret=&\(secret)",
            contentType: "application/x-www-form-urlencoded")
        XCTAssertFalse(text.contains(secret), text)
        XCTAssertTrue(text.contains("<redacted>: empty"), text)
    }

    /// The same as a field name of an error body (a status outside 2xx that no rule names, or
    /// any error status): the shape of a non-2xx body was not redacted at all.
    func testASecretAsAFieldNameOfAnErrorBodyIsRedacted() {
        for status in [119, 400, 418, 502] {
            let text = errorText(
                status: status, body: "client_secret=&Fz-client-secret-8&\(secret)",
                contentType: "application/x-www-form-urlencoded")
            XCTAssertFalse(text.contains(secret), "HTTP \(status): \(text)")
            XCTAssertTrue(text.contains("<redacted>: empty"), "HTTP \(status): \(text)")
            XCTAssertTrue(text.contains("Fz-client-secret-8: empty"), "HTTP \(status): \(text)")
        }
    }
}
