import BatonRedis
import BatonTestSupport
import BatonTokens
import Foundation
import XCTest

/// The Redis password kept out of the URL (`BATON_REDIS_PASSWORD`, `redis_password_file`), with
/// real `baton` processes against a real redis-server that wants it: `requirepass` for the
/// default user and an ACL user `baton`. No output, log or argument list ever holds it.
final class RedisPasswordProcessTests: XCTestCase {
    private let password = "pw-acl-\(UUID().uuidString)"
    private let defaultPassword = "pw-default-\(UUID().uuidString)"
    private var redis: RedisServerProcess!
    private var folder: URL!
    private var outputs: [String] = []

    override func setUpWithError() throws {
        redis = try RedisServerProcess.start(configuration: [
            "requirepass \(defaultPassword)", "user baton on >\(password) ~* &* +@all",
        ])
        folder = FileManager.default.temporaryDirectory.appendingPathComponent("baton-redis-pw-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
    }

    override func tearDown() {
        redis?.stop()
        if let folder { try? FileManager.default.removeItem(at: folder) }
    }

    /// `redis://baton:@127.0.0.1:PORT/0`: the ACL user, no password.
    private var userURL: String { "redis://baton:@127.0.0.1:\(redis.port)/0" }

    private func baton(_ arguments: [String], _ environment: [String: String]) throws -> (
        status: Int32, output: String
    ) {
        let result = try BatonExecutable.run(arguments, environment: environment, timeout: 60)
        outputs.append("$ baton \(arguments.joined(separator: " ")) -> \(result.status)\n\(result.output)")
        return result
    }

    private func assertNoPasswordAnywhere(file: StaticString = #filePath, line: UInt = #line) {
        for output in outputs {
            XCTAssertFalse(output.contains(password), "the password was printed: \(output)", file: file, line: line)
            XCTAssertFalse(
                output.contains(defaultPassword), "the password was printed: \(output)", file: file, line: line)
        }
    }

    func testPingAndLockRunTakeThePasswordFromTheEnvironment() throws {
        let asUser = ["BATON_REDIS_URL": userURL, "BATON_REDIS_PASSWORD": password]
        let ping = try baton(["ping", "--count", "1"], asUser)
        XCTAssertEqual(ping.status, 0, ping.output)
        let lock = try baton(["lock", "run", "password-\(UUID().uuidString)", "--", "true"], asUser)
        XCTAssertEqual(lock.status, 0, lock.output)
        // --redis carries no password; the default user's comes from the environment.
        let overridden = try baton(
            ["ping", "--count", "1", "--redis", "redis://127.0.0.1:\(redis.port)/0"],
            ["BATON_REDIS_PASSWORD": defaultPassword])
        XCTAssertEqual(overridden.status, 0, overridden.output)

        // Without it the server refuses; with a wrong one too.
        let without = try baton(["ping", "--count", "1"], ["BATON_REDIS_URL": userURL])
        XCTAssertNotEqual(without.status, 0, without.output)
        let wrong = try baton(["ping", "--count", "1"], ["BATON_REDIS_URL": userURL, "BATON_REDIS_PASSWORD": "nope"])
        XCTAssertNotEqual(wrong.status, 0, wrong.output)

        // A URL with a password of its own and BATON_REDIS_PASSWORD: refused, quoting neither.
        let ambiguous = try baton(
            ["ping", "--count", "1"],
            [
                "BATON_REDIS_URL": "redis://baton:\(password)@127.0.0.1:\(redis.port)/0",
                "BATON_REDIS_PASSWORD": defaultPassword,
            ])
        XCTAssertEqual(ambiguous.status, 2, ambiguous.output)
        XCTAssertTrue(ambiguous.output.contains("keep one"), ambiguous.output)
        assertNoPasswordAnywhere()
    }

    func testServeSeedAndStatusTakeThePasswordFromTheFile() async throws {
        let provider = try FakeOAuthProvider.start(lifetime: 300)
        defer { provider.stop() }
        let passwordFile = folder.appendingPathComponent("redis-password")
        try (password + "\n").write(to: passwordFile, atomically: true, encoding: .utf8)
        try FileManager.default.setAttributes([.posixPermissions: 0o600], ofItemAtPath: passwordFile.path)
        let service = "pw-\(UUID().uuidString.prefix(8).lowercased())"
        let config = try TestConfiguration(redisURL: userURL, settings: ["redis_password_file": "redis-password"])
            .service(service, tokenURL: provider.tokenURL, secretFile: true)
            .write(in: folder)

        let check = try baton(["config", "check", config], [:])
        XCTAssertEqual(check.status, 0, check.output)
        XCTAssertFalse(check.output.contains("warning:"), check.output)
        let tokenFile = folder.appendingPathComponent("refresh-token")
        try provider.seedRefreshToken().write(to: tokenFile, atomically: true, encoding: .utf8)
        let seed = try baton(["seed", service, "--refresh-token-file", tokenFile.path, "--config", config], [:])
        XCTAssertEqual(seed.status, 0, seed.output)

        let (serve, log) = try BatonExecutable.start(["serve", "--config", config, "--id", "pw-replica"])
        defer {
            serve.terminate()
            try? FileManager.default.removeItem(at: log)
        }
        // Read once the child has exec'd baton (between fork and exec it shows another command).
        let arguments = try await eventually("serve's argument list is baton's", timeout: .seconds(10)) {
            () -> String? in
            let bytes = FileManager.default.contents(atPath: "/proc/\(serve.pid)/cmdline") ?? Data()
            let text = String(decoding: bytes, as: UTF8.self)
            return text.contains("serve") ? text : nil
        }
        XCTAssertFalse(arguments.contains(password), "the password is in serve's argument list")
        let client = try RedisClient(url: "redis://baton:\(password)@127.0.0.1:\(redis.port)/0")
        defer { client.shutDown() }
        let store = TokenStore(client: client, encryption: TestKeyring.encryption)
        try await eventually(
            "baton serve refreshes the service through the password from the file", timeout: .seconds(60),
            diagnostics: { (try? String(contentsOf: log, encoding: .utf8)) ?? "" }
        ) {
            try await store.record(service)?.accessToken.isEmpty == false
        }
        let status = try baton(["status", "--config", config], [:])
        XCTAssertEqual(status.status, 0, status.output)
        serve.terminate()
        outputs.append((try? String(contentsOf: log, encoding: .utf8)) ?? "")

        // BATON_REDIS_PASSWORD wins over the file.
        try "wrong\n".write(to: passwordFile, atomically: true, encoding: .utf8)
        try FileManager.default.setAttributes([.posixPermissions: 0o600], ofItemAtPath: passwordFile.path)
        let wrongFile = try baton(["status", "--config", config], [:])
        XCTAssertNotEqual(wrongFile.status, 0, wrongFile.output)
        let environmentWins = try baton(["status", "--config", config], ["BATON_REDIS_PASSWORD": password])
        XCTAssertEqual(environmentWins.status, 0, environmentWins.output)

        // A file others can read is refused before anything connects.
        try FileManager.default.setAttributes([.posixPermissions: 0o644], ofItemAtPath: passwordFile.path)
        let insecure = try baton(["config", "check", config], [:])
        XCTAssertEqual(insecure.status, 2, insecure.output)
        XCTAssertTrue(insecure.output.contains("chmod 600 \(passwordFile.path)"), insecure.output)
        assertNoPasswordAnywhere()
    }
}
