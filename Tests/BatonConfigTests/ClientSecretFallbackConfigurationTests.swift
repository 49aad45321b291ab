import Foundation
import XCTest

@testable import BatonConfig

/// `client_secret_fallback_env` / `client_secret_fallback_file`: read like the primary secret.
final class ClientSecretFallbackConfigurationTests: XCTestCase {
    private var folder: URL!

    override func setUpWithError() throws {
        folder = FileManager.default.temporaryDirectory.appendingPathComponent("baton-fallback-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        try "old-secret\n".write(to: folder.appendingPathComponent("old.txt"), atomically: true, encoding: .utf8)
        try FileManager.default.setAttributes(
            [.posixPermissions: 0o600], ofItemAtPath: folder.appendingPathComponent("old.txt").path)
    }

    override func tearDown() {
        try? FileManager.default.removeItem(at: folder)
    }

    private func json(_ keys: [String: String]) -> String {
        var service = ["token_url": "https://auth.example.com/token", "client_id": "abc"]
        for (key, value) in keys { service[key] = value }
        let data = try! JSONSerialization.data(withJSONObject: ["services": ["my-api": service]], options: .sortedKeys)
        return String(decoding: data, as: UTF8.self)
    }

    private func parse(_ keys: [String: String], environment: [String: String]) throws -> BatonConfiguration {
        try BatonConfiguration.parse(
            Array(json(keys).utf8), environment: withTestKeyring(environment), baseDirectory: folder.path,
            file: "test.json")
    }

    private func problems(_ keys: [String: String], environment: [String: String] = ["NEW": "new-secret"]) -> [String] {
        configurationError { try parse(keys, environment: environment) }?.problems.map(\.description) ?? []
    }

    func testFallbackFromEnvironmentOrFile() throws {
        let fromEnv = try parse(
            ["client_secret_env": "NEW", "client_secret_fallback_file": "old.txt"], environment: ["NEW": "new-secret"]
        ).services[0]
        XCTAssertEqual(fromEnv.clientSecret?.reveal(), "new-secret")
        XCTAssertEqual(fromEnv.clientSecretFallback?.reveal(), "old-secret")

        let fromFile = try parse(
            ["client_secret_file": "old.txt", "client_secret_fallback_env": "NEW"], environment: ["NEW": "new-secret"]
        ).services[0]
        XCTAssertEqual(fromFile.clientSecret?.reveal(), "old-secret")
        XCTAssertEqual(fromFile.clientSecretFallback?.reveal(), "new-secret")

        let none = try parse(["client_secret_env": "NEW"], environment: ["NEW": "new-secret"]).services[0]
        XCTAssertNil(none.clientSecretFallback)
    }

    func testAFallbackEqualToThePrimaryIsAccepted() throws {
        let service = try parse(
            ["client_secret_env": "NEW", "client_secret_fallback_env": "NEW"], environment: ["NEW": "new-secret"]
        ).services[0]
        XCTAssertEqual(service.clientSecretFallback?.reveal(), "new-secret")
    }

    func testAFallbackWithoutAPrimaryIsRefusedByName() {
        XCTAssertEqual(
            problems(["client_secret_fallback_env": "NEW"]),
            [
                "services.my-api.client_secret_fallback_env: a fallback secret needs a primary one: set client_secret_env or client_secret_file as well"
            ])
        XCTAssertEqual(
            problems(["client_secret_fallback_file": "old.txt"]),
            [
                "services.my-api.client_secret_fallback_file: a fallback secret needs a primary one: set client_secret_env or client_secret_file as well"
            ])
    }

    func testBothFallbackKeysAreRefused() {
        XCTAssertEqual(
            problems([
                "client_secret_env": "NEW", "client_secret_fallback_env": "NEW",
                "client_secret_fallback_file": "old.txt",
            ]),
            ["services.my-api: set client_secret_fallback_env or client_secret_fallback_file, not both"])
    }

    func testTheFallbackIsCheckedLikeThePrimary() {
        XCTAssertEqual(
            problems(["client_secret_env": "NEW", "client_secret_fallback_env": "OLD"]),
            [
                "services.my-api.client_secret_fallback_env: the environment variable OLD is not set (or empty): export it before starting Baton"
            ])
        let missing = problems(["client_secret_env": "NEW", "client_secret_fallback_file": "gone.txt"])
        XCTAssertEqual(missing.count, 1)
        XCTAssertTrue(missing[0].hasPrefix("services.my-api.client_secret_fallback_file: cannot read '"), "\(missing)")
        XCTAssertTrue(missing[0].hasSuffix("gone.txt': no such file"), "\(missing)")
        // The secret's value never shows: only the variable's name does.
        for problem in problems(["client_secret_fallback_env": "NEW"]) {
            XCTAssertFalse(problem.contains("new-secret"), problem)
        }
    }

    func testATypoGetsASuggestion() {
        let found = problems(["client_secret_env": "NEW", "client_secret_falback_env": "OLD"])
        XCTAssertEqual(found.count, 1)
        XCTAssertTrue(found[0].contains("did you mean 'client_secret_fallback_env'?"), "\(found)")
    }
}
