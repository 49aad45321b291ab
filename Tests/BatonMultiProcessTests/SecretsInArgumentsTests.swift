import BatonCommandLine
import BatonRedis
import BatonTestSupport
import Foundation
import XCTest

/// Secrets stay out of process arguments: `--redis` refuses a password, and `baton get --header`
/// feeds `curl -H @-` through a pipe (real baton, real curl, real redis-server).
final class SecretsInArgumentsTests: XCTestCase {
    func testEveryCommandRefusesARedisURLWithAPassword() throws {
        let config = FileManager.default.temporaryDirectory.appendingPathComponent(
            "baton-argv-\(UUID().uuidString).json")
        try #"{"services": {"my-api": {"token_url": "http://127.0.0.1:9/token", "client_id": "x"}}}"#
            .write(to: config, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(at: config) }
        let commands: [[String]] = [
            ["serve", "--config", config.path], ["get", "my-api"],
            ["seed", "my-api", "--refresh-token-file", "/nonexistent"],
            ["status"], ["watch"], ["refresh", "my-api", "--config", config.path], ["lock", "status", "nightly"],
            ["lock", "run", "nightly", "--", "true"], ["lock", "release", "nightly", "--force"],
            ["lock", "selftest", "nightly", "--iterations", "1", "--journal", "j"], ["bench", "lock"], ["ping"],
        ]
        let urls = [
            "redis://:hunter2-a@127.0.0.1:1/0", "redis://baton:hunter2-b@127.0.0.1:1", "redis://hunter2-c@127.0.0.1:1",
            "unix:///tmp/r.sock?password=hunter2-d", "unix:///tmp/r.sock?db=1&token=hunter2-e",
        ]
        for (index, command) in commands.enumerated() {
            let url = urls[index % urls.count]
            for form in [["--redis", url], ["--redis=\(url)"]] {
                // Options go before a `--` command tail (baton lock run).
                let split = command.firstIndex(of: "--") ?? command.endIndex
                let words = Array(command[..<split]) + form + Array(command[split...])
                let result = try BatonExecutable.run(words, timeout: 20)
                let shown = words.joined(separator: " ")
                XCTAssertEqual(result.status, 2, "\(shown): \(result.output)")
                XCTAssertTrue(result.output.contains("--redis must not carry a password"), "\(shown): \(result.output)")
                XCTAssertTrue(
                    result.output.contains("BATON_REDIS_URL") && result.output.contains("redis_url"), result.output)
                XCTAssertFalse(result.output.contains("hunter2"), "the password was echoed: \(result.output)")
            }
        }
        // Without a password --redis is used: nothing listens on port 1, so Redis is unavailable (5).
        let plain = try BatonExecutable.run(["ping", "--redis", "redis://127.0.0.1:1/0"], timeout: 20)
        XCTAssertEqual(plain.status, 5, plain.output)
        // The same URL with a password from the environment is accepted (and never printed).
        let fromEnvironment = try BatonExecutable.run(
            ["ping"], environment: ["BATON_REDIS_URL": "redis://:hunter2-env@127.0.0.1:1/0"], timeout: 20)
        XCTAssertEqual(fromEnvironment.status, 5, fromEnvironment.output)
        XCTAssertFalse(fromEnvironment.output.contains("hunter2"), fromEnvironment.output)
    }

    func testHeaderLineGoesToCurlThroughAPipe() throws {
        let redis = try RedisServerProcess.start()
        let provider = try FakeOAuthProvider.start(lifetime: 300)
        let client = try RedisClient(url: redis.url)
        addTeardownBlock {
            client.shutDown()
            provider.stop()
            redis.stop()
        }
        let token = "at-\(UUID().uuidString)"
        try storeRecord(client, accessToken: token)

        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("baton-curl-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        let echoURL = provider.tokenURL.replacingOccurrences(of: "/token", with: "/echo")
        // The README's recipe, verbatim apart from the paths: the token never is an argument.
        let script =
            "'\(BatonExecutable.path)' get my-api --header | curl -sS --fail -H @- '\(echoURL)' > '\(folder.path)/out'"
        let (shell, log) = try runShell(script, environment: ["BATON_REDIS_URL": redis.url])
        defer { try? FileManager.default.removeItem(at: log) }
        XCTAssertEqual(shell, 0, (try? String(contentsOf: log, encoding: .utf8)) ?? "")
        let echoed =
            try JSONSerialization.jsonObject(with: Data(contentsOf: folder.appendingPathComponent("out")))
            as? [String: Any]
        let headers = try XCTUnwrap(echoed?["headers"] as? [[String]])
        XCTAssertEqual(
            headers.filter { $0[0].lowercased() == "authorization" }, [["Authorization", "Bearer \(token)"]])

        // Exactly one line, newline-terminated, nothing else on standard output.
        let header = try BatonExecutable.run(
            ["get", "my-api", "--header"], environment: ["BATON_REDIS_URL": redis.url])
        XCTAssertEqual(header.status, 0)
        XCTAssertEqual(header.output, "Authorization: Bearer \(token)\n")
    }

    func testHeaderRefusesATokenThatWouldSmuggleAnotherHeader() throws {
        let redis = try RedisServerProcess.start()
        let client = try RedisClient(url: redis.url)
        addTeardownBlock {
            client.shutDown()
            redis.stop()
        }
        try storeRecord(client, accessToken: "at-visible\r\nX-Injected: yes")
        let result = try BatonExecutable.run(
            ["get", "my-api", "--header"], environment: ["BATON_REDIS_URL": redis.url])
        XCTAssertEqual(result.status, 1, result.output)
        XCTAssertFalse(result.output.contains("at-visible"), result.output)
        XCTAssertFalse(result.output.contains("Authorization:"), result.output)
        XCTAssertTrue(result.output.contains("refusing to print it as a header line"), result.output)
    }

    /// A valid record for `my-api` under the default prefix, written as the coordinator would.
    private func storeRecord(_ client: RedisClient, accessToken: String) throws {
        let now = Int64(Date().timeIntervalSince1970 * 1000)
        let record: [String: Any] = [
            "service": "my-api", "access_token": accessToken, "token_type": "Bearer", "expires_at": now + 600_000,
            "refreshed_at": now, "refreshed_by": "test", "scope": NSNull(), "status": "ok", "last_error": NSNull(),
            "version": 1,
        ]
        let json = try JSONSerialization.data(withJSONObject: record)
        _ = try client.sendBlocking(RedisCommand("SET", "oauth:{my-api}:token", String(decoding: json, as: UTF8.self)))
    }

    private func runShell(_ script: String, environment: [String: String]) throws -> (Int32, URL) {
        let log = FileManager.default.temporaryDirectory.appendingPathComponent("baton-sh-\(UUID().uuidString).log")
        let shell = try ChildProcess(
            executable: "/bin/sh", arguments: ["-c", script], streams: .file(log.path), environment: environment)
        if !shell.waitForExit(timeout: 30) { shell.terminate() }
        return (shell.terminationStatus ?? -1, log)
    }
}
