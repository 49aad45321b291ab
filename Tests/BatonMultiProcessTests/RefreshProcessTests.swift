import BatonCommandLine
import BatonRedis
import BatonTestSupport
import Foundation
import XCTest

/// `baton refresh`, `seed`, `get` and `config check` as separate processes.
final class RefreshProcessTests: XCTestCase {
    private func writeConfig(provider: FakeOAuthProvider, redis: RedisServerProcess) throws -> String {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("baton-cli-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        addTeardownBlock { try? FileManager.default.removeItem(at: folder) }
        return try TestConfiguration(redisURL: redis.url, settings: ["state_dir": "state"])
            .service("my-api", tokenURL: provider.tokenURL, secretFile: true, ["refresh_buffer": "5s"])
            .write(in: folder)
    }

    /// A throwaway redis-server and fake provider (stopped when the test ends) and a configuration
    /// for them.
    private func startServers(tokenLifetime: Double) throws -> (RedisServerProcess, FakeOAuthProvider, config: String) {
        let redis = try RedisServerProcess.start()
        let provider = try FakeOAuthProvider.start(lifetime: tokenLifetime)
        addTeardownBlock {
            provider.stop()
            redis.stop()
        }
        return (redis, provider, try writeConfig(provider: provider, redis: redis))
    }

    func testTwentyConcurrentRefreshProcessesMakeOneProviderCall() throws {
        let (_, provider, config) = try startServers(tokenLifetime: 60)
        let tokenFile = FileManager.default.temporaryDirectory.appendingPathComponent("rt-\(UUID().uuidString)")
        try provider.seedRefreshToken().write(to: tokenFile, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(at: tokenFile) }
        let seeded = try BatonExecutable.run([
            "seed", "my-api", "--refresh-token-file", tokenFile.path, "--config", config,
        ])
        XCTAssertEqual(seeded.status, 0, seeded.output)

        let processes = try (0..<20).map { _ in try BatonExecutable.start(["refresh", "my-api", "--config", config]) }
        var tokens = Set<String>()
        for (process, output) in processes {
            XCTAssertTrue(process.waitForExit(timeout: 60))
            let text = try String(contentsOf: output, encoding: .utf8)
            XCTAssertEqual(process.terminationStatus, 0, text)
            let record = try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any]
            tokens.insert(record?["access_token"] as? String ?? "")
            try? FileManager.default.removeItem(at: output)
        }
        XCTAssertEqual(try provider.tokenRequests(), 1, "exactly one provider call for twenty processes")
        XCTAssertEqual(try provider.invalidGrants(), 0)
        XCTAssertEqual(tokens.count, 1, "all twenty printed the same token")

        let get = try BatonExecutable.run(["get", "my-api", "--config", config])
        XCTAssertEqual(get.status, 0)
        XCTAssertEqual(get.output.trimmingCharacters(in: .whitespacesAndNewlines), tokens.first)
        let header = try BatonExecutable.run(["get", "my-api", "--header", "--config", config])
        XCTAssertEqual(
            header.output.trimmingCharacters(in: .whitespacesAndNewlines), "Authorization: Bearer \(tokens.first!)")
    }

    func testWatchPrintsEveryChangeButNeverAToken() throws {
        let (_, provider, config) = try startServers(tokenLifetime: 60)
        let (watch, output) = try BatonExecutable.start(["watch", "--config", config])
        defer { try? FileManager.default.removeItem(at: output) }
        Thread.sleep(forTimeInterval: 0.5)
        let tokenFile = FileManager.default.temporaryDirectory.appendingPathComponent("rt-\(UUID().uuidString)")
        try provider.seedRefreshToken().write(to: tokenFile, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(at: tokenFile) }
        XCTAssertEqual(
            try BatonExecutable.run(["seed", "my-api", "--refresh-token-file", tokenFile.path, "--config", config])
                .status, 0)
        let refreshed = try BatonExecutable.run(["refresh", "my-api", "--config", config])
        let token = try XCTUnwrap(
            (try JSONSerialization.jsonObject(with: Data(refreshed.output.utf8)) as? [String: Any])?["access_token"]
                as? String)
        Thread.sleep(forTimeInterval: 0.7)
        watch.signal(SIGINT)
        XCTAssertTrue(watch.waitForExit(timeout: 5))
        let text = try String(contentsOf: output, encoding: .utf8)
        XCTAssertTrue(text.contains("my-api  v1  seeded"), text)
        XCTAssertTrue(text.contains("my-api  v2  ok"), text)
        XCTAssertFalse(text.contains(token), "a token was printed")
    }

    func testExitCodesForMissingExpiredAndNeedsReauth() throws {
        let (redis, provider, config) = try startServers(tokenLifetime: 2)
        let missing = try BatonExecutable.run(["get", "my-api", "--wait", "0", "--config", config])
        XCTAssertEqual(missing.status, 6)
        XCTAssertTrue(missing.output.contains("there is no record at all"), missing.output)
        let unseeded = try BatonExecutable.run(["refresh", "my-api", "--config", config])
        XCTAssertEqual(unseeded.status, 6)
        XCTAssertTrue(unseeded.output.contains("baton seed my-api"), unseeded.output)

        let tokenFile = FileManager.default.temporaryDirectory.appendingPathComponent("rt-\(UUID().uuidString)")
        try provider.seedRefreshToken().write(to: tokenFile, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(at: tokenFile) }
        XCTAssertEqual(
            try BatonExecutable.run(["seed", "my-api", "--refresh-token-file", tokenFile.path, "--config", config])
                .status, 0)
        XCTAssertEqual(try BatonExecutable.run(["refresh", "my-api", "--config", config]).status, 0)
        Thread.sleep(forTimeInterval: 2.2)
        let expired = try BatonExecutable.run(["get", "my-api", "--wait", "500ms", "--config", config])
        XCTAssertEqual(expired.status, 6)
        XCTAssertTrue(expired.output.contains("no usable token for 'my-api' within 500ms"), expired.output)

        try provider.setMode("invalid_grant")
        let rejected = try BatonExecutable.run(["refresh", "my-api", "--force", "--config", config])
        XCTAssertEqual(rejected.status, 3, rejected.output)
        let reauth = try BatonExecutable.run(["get", "my-api", "--config", config])
        XCTAssertEqual(reauth.status, 3)
        XCTAssertTrue(reauth.output.contains("needs re-authorisation"), reauth.output)

        try provider.setMode("unavailable")
        provider.stop()
        redis.stop()
        let down = try BatonExecutable.run(["get", "my-api", "--wait", "0", "--config", config])
        XCTAssertEqual(down.status, 5, down.output)
    }

    func testConfigCheckListsEveryProblemAndExitsTwo() throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("baton-bad-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        let bad = folder.appendingPathComponent("bad.json")
        try """
        {"services": {"svc": {"token_url": "http://auth.example.com/t", "client_id": "x", "client_secret": "inline", "refresh_buffer": "soon"}}}
        """.write(to: bad, atomically: true, encoding: .utf8)
        let result = try BatonExecutable.run(["config", "check", bad.path])
        XCTAssertEqual(result.status, 2)
        for expected in [
            "3 problems", "services.svc.client_secret", "services.svc.token_url", "services.svc.refresh_buffer",
        ] {
            XCTAssertTrue(result.output.contains(expected), "\(expected) missing from:\n\(result.output)")
        }
        XCTAssertFalse(result.output.contains("inline\""))
        let notJSON = folder.appendingPathComponent("broken.json")
        try "{\"services\": {".write(to: notJSON, atomically: true, encoding: .utf8)
        let broken = try BatonExecutable.run(["config", "check", notJSON.path])
        XCTAssertEqual(broken.status, 2)
        XCTAssertTrue(broken.output.contains("line 1"), broken.output)
        let absent = try BatonExecutable.run(["config", "check", folder.appendingPathComponent("none.json").path])
        XCTAssertEqual(absent.status, 2)
        XCTAssertTrue(absent.output.contains("does not exist"), absent.output)
    }

    func testSeedFromAnAuthorizationCodeWithPKCE() throws {
        let (_, provider, config) = try startServers(tokenLifetime: 60)
        let folder = URL(fileURLWithPath: config).deletingLastPathComponent()
        let verifier = "verifier-" + String(repeating: "v", count: 40)
        // S256 of the verifier, computed independently with Python's hashlib in the provider.
        let challenge = try String(
            decoding: runPython(
                "import base64,hashlib,sys; print(base64.urlsafe_b64encode(hashlib.sha256(sys.argv[1].encode()).digest()).rstrip(b'=').decode())",
                verifier), as: UTF8.self
        )
        .trimmingCharacters(in: .whitespacesAndNewlines)
        let code = try provider.issueCode(challenge: challenge, redirectURI: "http://localhost:9/cb")
        try code.write(to: folder.appendingPathComponent("code"), atomically: true, encoding: .utf8)
        try verifier.write(to: folder.appendingPathComponent("verifier"), atomically: true, encoding: .utf8)
        let seeded = try BatonExecutable.run([
            "seed", "my-api", "--authorization-code-file", folder.appendingPathComponent("code").path,
            "--redirect-uri", "http://localhost:9/cb", "--code-verifier-file",
            folder.appendingPathComponent("verifier").path, "--config", config,
        ])
        XCTAssertEqual(seeded.status, 0, seeded.output)
        XCTAssertFalse(seeded.output.contains(code))
        XCTAssertEqual(try BatonExecutable.run(["get", "my-api", "--config", config]).status, 0)
        // The stored refresh token works.
        XCTAssertEqual(try BatonExecutable.run(["refresh", "my-api", "--force", "--config", config]).status, 0)
        XCTAssertEqual(try provider.invalidGrants(), 0)
    }

    /// The code is single-use: when the answer to it is unusable but carries a refresh token,
    /// that token is stored rather than lost (and never printed).
    func testSeedKeepsTheRefreshTokenOfAnUnusableAuthorizationCodeAnswer() throws {
        let (_, provider, config) = try startServers(tokenLifetime: 60)
        let folder = URL(fileURLWithPath: config).deletingLastPathComponent()
        let code = try provider.issueCode(challenge: nil, redirectURI: "http://localhost:9/cb")
        try code.write(to: folder.appendingPathComponent("code"), atomically: true, encoding: .utf8)
        try provider.setMode("access_token_number", count: 1)
        let seeded = try BatonExecutable.run([
            "seed", "my-api", "--authorization-code-file", folder.appendingPathComponent("code").path,
            "--redirect-uri", "http://localhost:9/cb", "--config", config,
        ])
        XCTAssertEqual(seeded.status, 0, seeded.output)
        XCTAssertTrue(seeded.output.contains("with the refresh token from that answer"), seeded.output)
        XCTAssertFalse(seeded.output.contains("rt-"), "a token was printed: \(seeded.output)")
        let refreshed = try BatonExecutable.run(["refresh", "my-api", "--config", config])
        XCTAssertEqual(refreshed.status, 0, refreshed.output)
        XCTAssertEqual(try provider.invalidGrants(), 0)
    }

    private func runPython(_ program: String, _ argument: String) throws -> [UInt8] {
        let output = FileManager.default.temporaryDirectory.appendingPathComponent("py-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: output) }
        let process = try ChildProcess(
            executable: "python3", arguments: ["-c", program, argument], streams: .file(output.path))
        process.waitForExit(timeout: 10)
        return Array(try Data(contentsOf: output))
    }
}
