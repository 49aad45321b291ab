import Foundation
import XCTest

@testable import BatonConfig

/// The `http` object: defaults, every accepted form of `listen`, and bad values reported with
/// their key.
final class HTTPConfigurationTests: XCTestCase {
    private func parse(_ http: String?) throws -> BatonConfiguration {
        let document = """
            {
              \(http.map { "\"http\": \($0)," } ?? "")
              "services": {"my-api": {"token_url": "https://auth.example.com/oauth/token", "client_id": "abc"}}
            }
            """
        return try BatonConfiguration.parse(
            Array(document.utf8), environment: withTestKeyring([:]), baseDirectory: "/tmp")
    }

    private func problems(_ http: String, file: StaticString = #filePath, line: UInt = #line) -> [String] {
        configurationError(http, file: file, line: line) { try parse(http) }?.problems.map(\.description) ?? []
    }

    func testDefaultsListenOnLoopback9464() throws {
        let http = try parse(nil).http
        XCTAssertEqual(http.listen, .init(host: "127.0.0.1", port: 9464))
        XCTAssertEqual(http.maxConnections, 64)
        XCTAssertEqual(http.maxBody, 16384)
        XCTAssertEqual(http.maxConnectionsPerIP, 16)
        XCTAssertEqual(http.listen?.localURL(path: "/readyz"), "http://127.0.0.1:9464/readyz")
    }

    func testListenForms() throws {
        XCTAssertNil(try parse(#"{"listen": "off"}"#).http.listen)
        XCTAssertEqual(try parse(#"{"listen": "10.0.0.5:8080"}"#).http.listen, .init(host: "10.0.0.5", port: 8080))
        let everyInterface = try parse(#"{"listen": ":9000"}"#).http.listen
        XCTAssertEqual(everyInterface, .init(host: "0.0.0.0", port: 9000))
        XCTAssertEqual(everyInterface?.localURL(path: "/livez"), "http://127.0.0.1:9000/livez")
        let v6 = try parse(
            #"{"listen": "[::1]:9464", "max_connections": 8, "max_connections_per_ip": 4, "max_body": 2048}"#
        ).http
        XCTAssertEqual(v6.listen, .init(host: "::1", port: 9464))
        XCTAssertEqual(v6.listen?.text, "[::1]:9464")
        XCTAssertEqual(v6.maxConnections, 8)
        XCTAssertEqual(v6.maxBody, 2048)
        XCTAssertEqual(v6.maxConnectionsPerIP, 4)
    }

    func testBadValuesAreReportedWithTheirKey() {
        for bad in ["localhost:9464", "127.0.0.1", "127.0.0.1:0", "127.0.0.1:70000", "[::1]9464", "::1:9464", ""] {
            let found = problems(#"{"listen": "\#(bad)"}"#)
            XCTAssertEqual(found.count, 1, "\(bad): \(found)")
            XCTAssertTrue(
                found.first?.hasPrefix("http.listen: ") == true && found.first?.contains("\"off\"") == true, "\(found)")
        }
        XCTAssertEqual(problems(#"{"listen": 9464}"#), ["http.listen: must be a string, not a number"])
        XCTAssertTrue(problems(#"{"max_connections": 1}"#).first?.hasPrefix("http.max_connections: ") == true)
        XCTAssertTrue(problems(#"{"max_body": "16KiB"}"#).first?.hasPrefix("http.max_body: ") == true)
        XCTAssertTrue(problems(#""127.0.0.1:9464""#).first?.hasPrefix("http: must be an object") == true)
        let unknown = problems(#"{"lisen": "off"}"#)
        XCTAssertEqual(unknown.count, 1)
        XCTAssertTrue(unknown.first?.contains("did you mean 'listen'?") == true, "\(unknown)")
    }
}
