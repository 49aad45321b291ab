import Foundation
import XCTest

@testable import BatonConfig

/// `persist_replicas` and `persist_timeout`: defaults, accepted values, and every kind of bad value
/// reported with the key it belongs to.
final class ReplicaAcknowledgementConfigurationTests: XCTestCase {
    /// A minimal valid configuration with `extra` top-level members (JSON text, comma-separated).
    private func document(_ extra: String) -> String {
        """
        {
          \(extra.isEmpty ? "" : extra + ",")
          "services": {"my-api": {"token_url": "https://auth.example.com/oauth/token", "client_id": "abc"}}
        }
        """
    }

    private func parse(_ extra: String) throws -> BatonConfiguration {
        try BatonConfiguration.parse(
            Array(document(extra).utf8), environment: withTestKeyring([:]), baseDirectory: "/tmp")
    }

    private func problems(_ extra: String, file: StaticString = #filePath, line: UInt = #line) -> [String] {
        configurationError(extra, file: file, line: line) { try parse(extra) }?.problems.map(\.description) ?? []
    }

    func testDefaultsAskForNoReplicas() throws {
        let configuration = try parse("")
        XCTAssertEqual(configuration.persistReplicas, 0)
        XCTAssertEqual(configuration.persistTimeout, .seconds(1))
    }

    func testValuesAreRead() throws {
        let configuration = try parse(#""persist_replicas": 2, "persist_timeout": "250ms""#)
        XCTAssertEqual(configuration.persistReplicas, 2)
        XCTAssertEqual(configuration.persistTimeout, .milliseconds(250))
        XCTAssertEqual(try parse(#""persist_replicas": 0"#).persistReplicas, 0)
    }

    func testBadReplicaCountsNameTheKeyAndTheValue() {
        XCTAssertEqual(
            problems(#""persist_replicas": -1"#), ["persist_replicas: must be a whole number from 0 to 100, not -1"])
        XCTAssertEqual(
            problems(#""persist_replicas": 1.5"#), ["persist_replicas: must be a whole number from 0 to 100, not 1.5"])
        XCTAssertEqual(
            problems(#""persist_replicas": "1""#),
            ["persist_replicas: must be a whole number without quotes, not the string \"1\""])
        XCTAssertEqual(
            problems(#""persist_replicas": true"#), ["persist_replicas: must be a whole number, not true/false"])
        XCTAssertEqual(
            problems(#""persist_replicas": 101"#), ["persist_replicas: must be a whole number from 0 to 100, not 101"])
    }

    func testBadTimeoutsNameTheKey() {
        XCTAssertEqual(
            problems(#""persist_timeout": 1"#),
            [#"persist_timeout: 1 has no unit: write a string with one, as in "1s""#])
        for text in ["0s", "-1s", "soon", "1.5s"] {
            let found = problems(#""persist_timeout": "\#(text)""#)
            XCTAssertEqual(found.count, 1, "\(text): \(found)")
            XCTAssertTrue(
                found.first?.hasPrefix("persist_timeout: '\(text)' is not a duration") == true, "\(text): \(found)")
        }
        XCTAssertEqual(
            problems(#""lock_ttl": "5s", "persist_timeout": "5s""#),
            [
                "persist_timeout: 5s must be shorter than lock_ttl (5s): the lock stays held while a rotated token waits for replicas"
            ])
    }

    func testMisspelledKeysGetASuggestion() {
        XCTAssertEqual(
            problems(#""persist_replica": 1"#),
            ["persist_replica: unknown key at line 2 (did you mean 'persist_replicas'?)"])
        XCTAssertEqual(
            problems(#""persist_timout": "1s""#),
            ["persist_timout: unknown key at line 2 (did you mean 'persist_timeout'?)"])
    }
}
