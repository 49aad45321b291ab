import BatonCommandLine
import BatonConfig
import BatonRedis
import BatonSupport
import Foundation
import XCTest

@testable import baton

/// The Redis password from `BATON_REDIS_PASSWORD` or `redis_password_file` reaches the URL that
/// every command connects with, from each of the three places a URL comes from.
final class ConnectionOptionsPasswordTests: XCTestCase {
    private let password = "pw:@/?#-\(UUID().uuidString)"
    private var folder: URL!

    override func setUpWithError() throws {
        folder = FileManager.default.temporaryDirectory.appendingPathComponent("baton-options-pw-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
    }

    override func tearDown() {
        try? FileManager.default.removeItem(at: folder)
    }

    private func resolve(_ words: [String], _ options: ConnectionOptions, _ environment: [String: String]) throws
        -> ConnectionOptions.Resolved
    {
        let arguments = try CommandSpecification(
            name: "test", usage: [], groups: [options.group], positionals: 0...0, discussion: ""
        ).parse(words)
        return try options.resolve(arguments, environment: environment)
    }

    private func endpoint(_ resolved: ConnectionOptions.Resolved) throws -> RedisEndpoint {
        try RedisEndpoint(url: resolved.redisURL)
    }

    func testTheEnvironmentPasswordFillsEveryURLWithoutOne() throws {
        let environment = ["BATON_REDIS_PASSWORD": password]
        let option = try endpoint(resolve(["--redis", "redis://h:6379/1"], .locks, environment))
        XCTAssertEqual(option.password, password)
        XCTAssertNil(option.username)
        XCTAssertEqual(option.database, 1)
        let variable = try endpoint(
            resolve([], .redisOnly, environment.merging(["BATON_REDIS_URL": "redis://baton:@h/0"]) { $1 }))
        XCTAssertEqual(variable.password, password)
        XCTAssertEqual(variable.username, "baton")
        let sentinel = try endpoint(
            resolve(
                [], .redisOnly,
                environment.merging(["BATON_REDIS_URL": "redis-sentinel://baton:@s1,s2/0#baton"]) { $1 }))
        XCTAssertEqual(sentinel.password, password)
        XCTAssertEqual(sentinel.username, "baton")
        XCTAssertEqual(try resolve([], .redisOnly, [:]).redisURL, BatonDefaults.redisURL)
    }

    func testTheFilePasswordReachesTheConfigurationsCommands() throws {
        let passwordFile = folder.appendingPathComponent("redis-password")
        try password.write(to: passwordFile, atomically: true, encoding: .utf8)
        try FileManager.default.setAttributes([.posixPermissions: 0o600], ofItemAtPath: passwordFile.path)
        let config = folder.appendingPathComponent("baton.json")
        try #"""
        {"redis_url": "redis://baton:@file-host/0", "redis_password_file": "redis-password", "encryption": "none",
         "services": {"a": {"token_url": "https://auth.example.com/t", "client_id": "c"}}}
        """#.write(to: config, atomically: true, encoding: .utf8)
        let fromFile = try endpoint(resolve(["--config", config.path], .coordinator, [:]))
        XCTAssertEqual(fromFile.password, password)
        XCTAssertEqual(fromFile.username, "baton")
        // The environment wins over the file, and --redis takes the configuration's password too.
        let overridden = try endpoint(
            resolve(
                ["--config", config.path, "--redis", "redis://other-host/0"], .coordinator,
                ["BATON_REDIS_PASSWORD": "from-env"]))
        XCTAssertEqual(overridden.password, "from-env")
        XCTAssertEqual(overridden.transport, .tcp(host: "other-host", port: 6379))
    }

    func testTwoPasswordsAreRefusedWithoutQuotingEither() throws {
        let environment = [
            "BATON_REDIS_URL": "redis://baton:url-\(password)@h/0", "BATON_REDIS_PASSWORD": "env-\(password)",
        ]
        XCTAssertThrowsError(try resolve([], .redisOnly, environment)) { error in
            let message = (error as? UsageError)?.message ?? "\(error)"
            XCTAssertTrue(message.contains("keep one"), message)
            XCTAssertFalse(message.contains(password), message)
        }
    }
}
