import BatonConfig
import BatonHTTP
import XCTest

@testable import baton

/// The token API's key check and request parsing, without a server.
final class TokenAPIParsingTests: XCTestCase {
    private let keys = [
        APIKey(name: "n8n", key: Secret("n8n-key-0123456789abcdef"), scope: .services(["my-api"])),
        APIKey(name: "ops", key: Secret("ops-key-0123456789abcdef"), scope: .all),
    ]

    func testBearerKeysAreMatchedToTheirCaller() throws {
        let check = try TokenAPIKeys(keys)
        XCTAssertEqual(check.caller(authorization: "Bearer n8n-key-0123456789abcdef")?.name, "n8n")
        XCTAssertEqual(check.caller(authorization: "bearer  ops-key-0123456789abcdef ")?.name, "ops")
        XCTAssertEqual(check.caller(authorization: "BEARER ops-key-0123456789abcdef")?.scope, .all)
        for refused in [
            nil, "", "Bearer", "Bearer ", "Basic n8n-key-0123456789abcdef", "n8n-key-0123456789abcdef",
            "Bearer n8n-key-0123456789abcdeF", "Bearer n8n-key-0123456789abcde", "Bearer n8n-key-0123456789abcdefg",
        ] {
            XCTAssertNil(check.caller(authorization: refused), "\(refused ?? "nil") was accepted")
        }
        XCTAssertTrue(try TokenAPIKeys([]).isEmpty)
        XCTAssertNil(try TokenAPIKeys([]).caller(authorization: "Bearer anything-at-all-0123456789"))
    }

    func testRoutes() {
        XCTAssertEqual(TokenAPIRequest.route("/v1/tokens/my-api")?.service, "my-api")
        XCTAssertEqual(TokenAPIRequest.route("/v1/tokens/my-api")?.refresh, false)
        XCTAssertEqual(TokenAPIRequest.route("/v1/tokens/my-api/refresh")?.refresh, true)
        for path in ["/v1/tokens/", "/v1/tokens//refresh", "/v1/tokens/a/b", "/v1/tokens/a/refresh/x", "/v1/token/a"] {
            XCTAssertNil(TokenAPIRequest.route(path), path)
        }
    }

    func testWaitIsBoundedAndParsed() throws {
        XCTAssertEqual(try TokenAPIRequest.wait(nil), TokenAPIRequest.defaultWait)
        XCTAssertEqual(try TokenAPIRequest.wait("0"), .zero)
        XCTAssertEqual(try TokenAPIRequest.wait("250ms"), .milliseconds(250))
        XCTAssertEqual(try TokenAPIRequest.wait("10s"), .seconds(10))
        XCTAssertEqual(try TokenAPIRequest.wait("1h"), TokenAPIRequest.maxWait)
        for bad in ["abc", "", "-1s", "10", "1.5s"] {
            XCTAssertThrowsError(try TokenAPIRequest.wait(bad), bad) { error in
                XCTAssertEqual((error as? TokenAPIRequest.Refusal)?.status, 400)
            }
        }
    }

    func testRefreshBodies() throws {
        XCTAssertEqual(try TokenAPIRequest.version(in: Array(#"{"version": 12}"#.utf8)), 12)
        XCTAssertEqual(try TokenAPIRequest.version(in: Array(#"{"version": "12", "extra": 1}"#.utf8)), 12)
        XCTAssertEqual(try TokenAPIRequest.version(in: Array(#"{"version": 0}"#.utf8)), 0)
        let bad = [
            "", "{", "[]", "{}", #"{"version": -1}"#, #"{"version": "-1"}"#, #"{"version": 1.5}"#,
            #"{"version": true}"#, #"{"version": null}"#, #"{"version": "x"}"#, #"{"version": 99999999999999999999}"#,
        ]
        for body in bad {
            XCTAssertThrowsError(try TokenAPIRequest.version(in: Array(body.utf8)), body) { error in
                XCTAssertEqual((error as? TokenAPIRequest.Refusal)?.status, 400, body)
            }
        }
        let oversized = Array(#"{"version": 1, "pad": "\#(String(repeating: "x", count: 2000))"}"#.utf8)
        XCTAssertThrowsError(try TokenAPIRequest.version(in: oversized)) { error in
            XCTAssertEqual((error as? TokenAPIRequest.Refusal)?.status, 413)
        }
    }

    func testMethodsPerRoute() throws {
        XCTAssertEqual(
            try TokenAPIRequest(HTTPRequest(method: .get, path: "/v1/tokens/a"), service: "a", refresh: false),
            .token(service: "a", wait: TokenAPIRequest.defaultWait))
        XCTAssertEqual(
            try TokenAPIRequest(
                HTTPRequest(
                    method: .post, path: "/v1/tokens/a/refresh", queryParameters: [("wait", "2s")],
                    body: Array(#"{"version":3}"#.utf8)), service: "a", refresh: true),
            .refresh(service: "a", newerThan: 3, wait: .seconds(2)))
        for (method, refresh) in [(HTTPMethod.post, false), (.get, true), (.head, true), (.put, false)] {
            XCTAssertThrowsError(
                try TokenAPIRequest(HTTPRequest(method: method, path: "/x"), service: "a", refresh: refresh)
            ) { error in
                XCTAssertEqual((error as? TokenAPIRequest.Refusal)?.status, 405)
                XCTAssertNotNil((error as? TokenAPIRequest.Refusal)?.allow)
            }
        }
    }
}
