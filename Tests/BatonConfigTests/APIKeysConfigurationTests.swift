import Foundation
import XCTest

@testable import BatonConfig

/// `http.api_keys`: keys from a variable or a file, scopes, and every mistake reported with its
/// position and never with the key.
final class APIKeysConfigurationTests: XCTestCase {
    private var folder: URL!
    private let key = "k3y-0123456789abcdef-from-env"

    override func setUpWithError() throws {
        folder = FileManager.default.temporaryDirectory.appendingPathComponent("baton-apikeys-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        addTeardownBlock { [folder] in try? FileManager.default.removeItem(at: folder!) }
    }

    private func parse(_ http: String) throws -> BatonConfiguration {
        let document = """
            {
              "http": \(http),
              "services": {"my-api": {"token_url": "https://auth.example.com/oauth/token", "client_id": "abc"}}
            }
            """
        return try BatonConfiguration.parse(
            Array(document.utf8), environment: withTestKeyring(["API_KEY": key, "SHORT_KEY": "short"]),
            baseDirectory: folder.path)
    }

    private func problems(_ http: String, file: StaticString = #filePath, line: UInt = #line) -> [String] {
        configurationError(http, file: file, line: line) { try parse(http) }?.problems.map(\.description) ?? []
    }

    private func writeKeyFile(_ text: String, mode: Int) throws {
        let path = folder.appendingPathComponent("api-key").path
        try text.write(toFile: path, atomically: true, encoding: .utf8)
        try FileManager.default.setAttributes([.posixPermissions: mode], ofItemAtPath: path)
    }

    func testNoKeysByDefault() throws {
        XCTAssertEqual(try parse(#"{"listen": "127.0.0.1:9464"}"#).http.apiKeys, [])
    }

    func testKeysFromAVariableAndAFileWithScopes() throws {
        try writeKeyFile("file-key-0123456789abcdef\n", mode: 0o600)
        let http = try parse(
            #"{"api_keys": [{"name": "n8n", "key_env": "API_KEY", "services": ["my-api", "other"]}, {"key_file": "api-key", "services": ["*"]}]}"#
        ).http
        XCTAssertEqual(http.apiKeys.count, 2)
        XCTAssertEqual(http.apiKeys[0].name, "n8n")
        XCTAssertEqual(http.apiKeys[0].key.reveal(), key)
        XCTAssertEqual(http.apiKeys[0].scope, .services(["my-api", "other"]))
        XCTAssertTrue(http.apiKeys[0].scope.allows("other") && !http.apiKeys[0].scope.allows("third"))
        XCTAssertEqual(http.apiKeys[1].name, "key-2")
        XCTAssertEqual(http.apiKeys[1].key.reveal(), "file-key-0123456789abcdef")
        XCTAssertEqual(http.apiKeys[1].scope, .all)
        XCTAssertTrue(http.apiKeys[1].scope.allows("anything"))
    }

    func testAWideListenAddressWarnsAboutTLS() throws {
        let wide = try parse(#"{"listen": ":9464", "api_keys": [{"key_env": "API_KEY", "services": ["*"]}]}"#)
        XCTAssertTrue(wide.warnings.contains { $0.contains("TLS") }, "\(wide.warnings)")
        let loopback = try parse(#"{"api_keys": [{"key_env": "API_KEY", "services": ["*"]}]}"#)
        XCTAssertFalse(loopback.warnings.contains { $0.contains("TLS") }, "\(loopback.warnings)")
    }

    func testMistakesAreReportedWithTheirPositionAndNeverTheKey() throws {
        try writeKeyFile("file-key-0123456789abcdef", mode: 0o644)
        let cases: [(String, String)] = [
            (#"{"api_keys": {"key_env": "API_KEY"}}"#, "http.api_keys: must be a list"),
            (#"{"api_keys": [{"services": ["*"]}]}"#, "http.api_keys[0]: no key"),
            (#"{"api_keys": [{"key_env": "API_KEY"}]}"#, "http.api_keys[0].services: must be a non-empty list"),
            (#"{"api_keys": [{"key_env": "API_KEY", "services": []}]}"#, "http.api_keys[0].services: must be"),
            (#"{"api_keys": [{"key_env": "API_KEY", "services": ["a b"]}]}"#, "http.api_keys[0].services[0]: "),
            (#"{"api_keys": [{"key_env": "SHORT_KEY", "services": ["*"]}]}"#, "at least 16 printable"),
            (#"{"api_keys": [{"key_env": "UNSET", "services": ["*"]}]}"#, "UNSET is not set"),
            (#"{"api_keys": [{"key_file": "api-key", "services": ["*"]}]}"#, "chmod 600"),
            (#"{"api_keys": [{"key": "inline-0123456789abcdef", "services": ["*"]}]}"#, "inline key is refused"),
            (
                #"{"api_keys": [{"key_env": "API_KEY", "key_file": "api-key", "services": ["*"]}]}"#,
                "set key_env or key_file, not both"
            ),
            (
                #"{"api_keys": [{"name": "a", "key_env": "API_KEY", "services": ["*"]}, {"name": "a", "key_env": "API_KEY", "services": ["*"]}]}"#,
                "http.api_keys[1].name: 'a' names another key"
            ),
            (
                #"{"api_keys": [{"name": "a", "key_env": "API_KEY", "services": ["*"]}, {"name": "b", "key_env": "API_KEY", "services": ["*"]}]}"#,
                "http.api_keys[1]: the same key as 'a'"
            ),
            (
                #"{"listen": "off", "api_keys": [{"key_env": "API_KEY", "services": ["*"]}]}"#,
                "http.api_keys: the token API needs the listener"
            ),
        ]
        for (http, expected) in cases {
            let found = problems(http)
            XCTAssertTrue(found.contains { $0.contains(expected) }, "\(http): expected '\(expected)' in \(found)")
            XCTAssertFalse(found.joined().contains(key), "a key leaked into \(found)")
            XCTAssertFalse(found.joined().contains("0123456789abcdef"), "a key leaked into \(found)")
        }
    }
}
