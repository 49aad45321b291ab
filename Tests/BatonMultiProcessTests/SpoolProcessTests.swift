import BatonCommandLine
import BatonRedis
import BatonTestSupport
import Foundation
import XCTest

/// The rotated-token spool across processes: a `baton refresh` killed while Redis is down, after
/// the provider rotated the token, loses nothing.
final class SpoolProcessTests: XCTestCase {
    func testARotatedTokenSurvivesTheProcessThatGotIt() async throws {
        let redis = try RedisServerProcess.start(
            persistent: true, arguments: ["--appendonly", "yes", "--appendfsync", "always"])
        let provider = try FakeOAuthProvider.start(lifetime: 60)
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("baton-spool-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        addTeardownBlock {
            provider.stop()
            redis.stop()
            try? FileManager.default.removeItem(at: folder)
        }
        let config = try TestConfiguration(redisURL: redis.url, settings: ["state_dir": "state", "lock_ttl": "4s"])
            .service("my-api", tokenURL: provider.tokenURL, secretFile: true, ["request_timeout": "3s"])
            .write(in: folder)
        try provider.seedRefreshToken().write(
            to: folder.appendingPathComponent("rt"), atomically: true, encoding: .utf8)
        let seeded = try BatonExecutable.run([
            "seed", "my-api", "--refresh-token-file", folder.appendingPathComponent("rt").path, "--config", config,
        ])
        XCTAssertEqual(seeded.status, 0, seeded.output)

        // The provider rotates, then answers slowly; Redis dies meanwhile; the process is killed
        // while it retries the write.
        try provider.setMode("normal", count: 1, delay: 2)
        let (refresh, output) = try BatonExecutable.start(["refresh", "my-api", "--force", "--config", config])
        defer { try? FileManager.default.removeItem(at: output) }
        let client = try RedisClient(
            url: redis.url, options: .init(connection: .init(reconnect: .init(giveUpAfter: .seconds(5)))))
        defer { client.shutDown() }
        // Redis dies once the provider has rotated the token (its answer is then 2 s away): by
        // then the refresh has done every Redis read it needs before the write.
        let deadline = ContinuousClock.now + .seconds(30)
        while try provider.tokenRequests() < 1 {
            guard ContinuousClock.now < deadline else {
                return XCTFail(
                    "the refresh never called the provider: \(try String(contentsOf: output, encoding: .utf8))")
            }
            try await Task.sleep(for: .milliseconds(10))
        }
        redis.kill9()
        let spool = folder.appendingPathComponent("state/spool").path
        while (try? FileManager.default.contentsOfDirectory(atPath: spool))?.contains(where: { $0.hasSuffix(".json") })
            != true
        {
            guard ContinuousClock.now < deadline else {
                return XCTFail("no spool file: \(try String(contentsOf: output, encoding: .utf8))")
            }
            try await Task.sleep(for: .milliseconds(10))
        }
        let attributes = try FileManager.default.attributesOfItem(
            atPath: spool + "/"
                + (try FileManager.default.contentsOfDirectory(atPath: spool).first { $0.hasSuffix(".json") })!)
        XCTAssertEqual((attributes[.posixPermissions] as? NSNumber)?.intValue, 0o600)
        // Each failed write is reported (never with the token), and retried.
        var log = ""
        while !log.contains("not stored yet") {
            guard ContinuousClock.now < deadline else { return XCTFail("no retry reported: \(log)") }
            try await Task.sleep(for: .milliseconds(20))
            log = try String(contentsOf: output, encoding: .utf8)
        }
        refresh.signal(SIGKILL)
        refresh.waitForExit(timeout: 5)

        // The next process on this host stores the spooled token first, then refreshes with it
        // (once the dead holder's lock has expired).
        try redis.startAgain()
        let next = try BatonExecutable.run(["refresh", "my-api", "--force", "--config", config])
        XCTAssertEqual(next.status, 0, next.output)
        XCTAssertTrue(next.output.contains("stored 1 rotated refresh token"), next.output)
        XCTAssertEqual(try provider.invalidGrants(), 0, "the rotated token was not lost")
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: spool).filter { $0.hasSuffix(".json") }, [])
        let events = try await client.send("XRANGE", "oauth:{my-api}:events", "-", "+")
        XCTAssertTrue(events.description.contains("spool_replayed"))
        for secret in [FakeOAuthProvider.clientSecret] {
            XCTAssertFalse(log.contains(secret) || next.output.contains(secret))
        }
    }
}
