import BatonSupport
import Foundation
import XCTest

@testable import BatonConfig

/// `redis_password_file` and `BATON_REDIS_PASSWORD`: a Redis password kept outside the URL, and
/// the warning about one written inline.
final class RedisPasswordConfigurationTests: XCTestCase {
    private var folder: URL!
    private let password = "hunter2-redis-pw"

    override func setUpWithError() throws {
        folder = FileManager.default.temporaryDirectory.appendingPathComponent("baton-redis-pw-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
    }

    override func tearDown() {
        try? FileManager.default.removeItem(at: folder)
    }

    private func document(redisURL: String, extra: String = "") -> String {
        """
        {
          "redis_url": "\(redisURL)", \(extra)
          "services": {"my-api": {"token_url": "https://auth.example.com/token", "client_id": "abc"}}
        }
        """
    }

    private func parse(_ text: String, environment: [String: String] = [:]) throws -> BatonConfiguration {
        try BatonConfiguration.parse(
            Array(text.utf8), environment: withTestKeyring(environment), baseDirectory: folder.path, file: "test.json")
    }

    private func problems(_ text: String, environment: [String: String] = [:]) -> [ConfigurationError.Problem] {
        guard let error = configurationError(parse: { try parse(text, environment: environment) }) else { return [] }
        XCTAssertFalse(error.description.contains(password), "password in: \(error)")
        return error.problems
    }

    @discardableResult
    private func writePassword(_ text: String, mode: Int = 0o600) throws -> String {
        let path = folder.appendingPathComponent("redis-password").path
        try text.write(toFile: path, atomically: true, encoding: .utf8)
        try FileManager.default.setAttributes([.posixPermissions: mode], ofItemAtPath: path)
        return path
    }

    func testThePasswordFileIsReadRelativeToTheConfiguration() throws {
        try writePassword(password + "\n")
        let configuration = try parse(
            document(
                redisURL: "redis://coordinator:@127.0.0.1:6379/0", extra: #""redis_password_file": "redis-password","#))
        XCTAssertEqual(configuration.redisPassword?.reveal(), password)
        XCTAssertEqual(configuration.warnings, [])
        XCTAssertFalse("\(configuration.redisPassword!)".contains(password))
    }

    func testTheEnvironmentWinsAndTheFileIsThenNotRead() throws {
        let configuration = try parse(
            document(redisURL: "redis://127.0.0.1:6379/0", extra: #""redis_password_file": "absent","#),
            environment: ["BATON_REDIS_PASSWORD": "from-env"])
        XCTAssertEqual(configuration.redisPassword?.reveal(), "from-env")
        XCTAssertNil(try parse(document(redisURL: "redis://127.0.0.1:6379/0")).redisPassword)
        XCTAssertNil(
            try parse(document(redisURL: "redis://h:6379/0"), environment: ["BATON_REDIS_PASSWORD": ""]).redisPassword)
    }

    func testAPasswordFileOthersCanReadIsRefused() throws {
        let path = try writePassword(password, mode: 0o640)
        let found = problems(document(redisURL: "redis://h/0", extra: #""redis_password_file": "redis-password","#))
        XCTAssertEqual(found.map(\.path), ["redis_password_file"])
        XCTAssertTrue(found.first?.message.contains("has mode 640") == true, "\(found)")
        XCTAssertTrue(found.first?.message.contains("chmod 600 \(path)") == true, "\(found)")
    }

    func testAMissingOrEmptyPasswordFileIsAProblem() throws {
        let extra = #""redis_password_file": "redis-password","#
        XCTAssertTrue(
            problems(document(redisURL: "redis://h/0", extra: extra)).first?.message.contains("cannot be read") == true)
        try writePassword("\n")
        XCTAssertTrue(
            problems(document(redisURL: "redis://h/0", extra: extra)).first?.message.contains("is empty") == true)
    }

    func testAURLWithItsOwnPasswordAndAnotherIsAmbiguous() throws {
        try writePassword(password)
        let extra = #""redis_password_file": "redis-password","#
        for url in ["redis://u:\(password)@h/0", "redis://\(password)@h/0", "redis://h/0?password=\(password)"] {
            let found = problems(document(redisURL: url, extra: extra))
            XCTAssertEqual(found.map(\.path), ["redis_password_file"], url)
            XCTAssertTrue(found.first?.message.contains("carries a password too: keep one") == true, "\(found)")
        }
        let fromEnvironment = problems(
            document(redisURL: "redis://u:\(password)@h/0"), environment: ["BATON_REDIS_PASSWORD": "other"])
        XCTAssertEqual(fromEnvironment.map(\.path), ["BATON_REDIS_PASSWORD"])
        // BATON_REDIS_URL is the URL in force.
        let overridden = problems(
            document(redisURL: "redis://h/0", extra: extra),
            environment: ["BATON_REDIS_URL": "redis://u:\(password)@h/0"])
        XCTAssertEqual(overridden.map(\.path), ["redis_password_file"])
    }

    func testAnInlinePasswordIsAWarningThatQuotesNothing() throws {
        for url in ["redis://u:\(password)@h/0", "redis://\(password)@h/0", "unix:///s.sock?password=\(password)"] {
            let warnings = try parse(document(redisURL: url)).warnings
            XCTAssertEqual(warnings.count, 1, url)
            XCTAssertTrue(
                warnings.first?.hasPrefix(
                    "redis_url has an inline password: move it to BATON_REDIS_PASSWORD or redis_password_file") == true,
                "\(warnings)")
            XCTAssertFalse(warnings.joined().contains(password))
            XCTAssertFalse(warnings.joined().contains("@h/0"), "the URL was quoted")
        }
        for url in ["redis://h/0", "redis://u:@h/0", "rediss://h/0?tls_ca_file=/ca.crt"] {
            XCTAssertEqual(try parse(document(redisURL: url)).warnings, [], url)
        }
    }

    func testAnInlinePasswordKeyIsRefused() {
        let found = problems(document(redisURL: "redis://h/0", extra: #""redis_password": "\#(password)","#))
        XCTAssertEqual(found.map(\.path), ["redis_password"])
        XCTAssertTrue(found.first?.message.contains("use redis_password_file or BATON_REDIS_PASSWORD") == true)
    }
}
