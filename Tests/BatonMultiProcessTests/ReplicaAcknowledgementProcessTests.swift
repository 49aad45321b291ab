import BatonCommandLine
import BatonRedis
import BatonTestSupport
import BatonTokens
import Foundation
import XCTest

/// `persist_replicas: 1` with real `baton refresh` and `baton serve` processes: while no replica
/// has a rotated refresh token, the refresh is not done, the token stays in the spool, the lock
/// stays held, and `baton status` (another process) says so; a replica that comes up ends it.
final class ReplicaAcknowledgementProcessTests: XCTestCase {
    private var master: RedisServerProcess!
    private var provider: FakeOAuthProvider!
    private var folder: URL!
    private var config = ""

    override func setUpWithError() throws {
        master = try RedisServerProcess.start(arguments: RedisServerProcess.replicationFriendlyArguments)
        provider = try FakeOAuthProvider.start(lifetime: 60)
        folder = FileManager.default.temporaryDirectory.appendingPathComponent("baton-acks-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        addTeardownBlock { [self] in
            provider.stop()
            master.stop()
            try? FileManager.default.removeItem(at: folder)
        }
        config = try TestConfiguration(
            redisURL: master.url,
            settings: [
                "state_dir": "state", "lock_ttl": "3s", "lock_wait": "2s", "persist_replicas": 1,
                "persist_timeout": "200ms",
            ]
        )
        .service("my-api", tokenURL: provider.tokenURL, secretFile: true, ["request_timeout": "2s"])
        .write(in: folder)
        try provider.seedRefreshToken().write(
            to: folder.appendingPathComponent("rt"), atomically: true, encoding: .utf8)
        let seeded = try BatonExecutable.run([
            "seed", "my-api", "--refresh-token-file", folder.appendingPathComponent("rt").path, "--config", config,
        ])
        XCTAssertEqual(seeded.status, 0, seeded.output)
    }

    // MARK: - Helpers

    private func spooledFiles() -> [String] {
        let spool = folder.appendingPathComponent("state/spool").path
        return ((try? FileManager.default.contentsOfDirectory(atPath: spool)) ?? []).filter { $0.hasSuffix(".json") }
    }

    private func status() throws -> (text: String, json: [String: Any]) {
        let text = try BatonExecutable.run(["status", "--config", config])
        XCTAssertEqual(text.status, 0, text.output)
        let json = try BatonExecutable.run(["status", "--json", "--config", config])
        XCTAssertEqual(json.status, 0, json.output)
        let rows = try JSONSerialization.jsonObject(with: Data(json.output.utf8)) as? [[String: Any]]
        return (text.output, rows?.first { $0["service"] as? String == "my-api" } ?? [:])
    }

    private func value(_ key: String, on server: RedisServerProcess) throws -> String? {
        let connection = try RedisConnection(url: server.url)
        defer { connection.close() }
        return try connection.send(RedisCommand("GET", key)).string
    }

    /// A replica of the master, stopped when the test ends, once the master streams to it.
    private func startReplica() async throws -> RedisServerProcess {
        let replica = try RedisServerProcess.startReplica(of: master)
        addTeardownBlock { replica.stop() }
        try await eventually("the replica is online", timeout: .seconds(30), diagnostics: { replica.log }) {
            try master.onlineReplicas() == 1
        }
        return replica
    }

    /// The checks shared by both tests while the token waits: the spool file, the lock held by
    /// one owner past its TTL, and `baton status` in both formats.
    private func checkWaiting(stillRunning: () -> Bool, diagnostics: () -> String) async throws {
        XCTAssertEqual(spooledFiles().count, 1, "the rotated token stays in the spool: \(diagnostics())")
        let (text, row) = try await eventually("baton status shows the wait", diagnostics: diagnostics) {
            let found = try status()
            return found.json["awaiting_replicas"] != nil ? found : nil
        }
        XCTAssertEqual(row["status"] as? String, "awaiting_replicas")
        let waiting = try XCTUnwrap(row["awaiting_replicas"] as? [String: Any])
        XCTAssertEqual(waiting["required"] as? Int, 1)
        XCTAssertEqual(waiting["acknowledged"] as? Int, 0)
        XCTAssertGreaterThan(waiting["since"] as? Int ?? 0, 0)
        XCTAssertGreaterThanOrEqual(waiting["attempts"] as? Int ?? 0, 1)
        XCTAssertTrue(text.contains("awaiting_replicas"), text)
        XCTAssertTrue(text.contains("awaiting 1 replica acknowledgement for"), text)

        let owner = try value("oauth:{my-api}:lock", on: master)
        XCTAssertNotNil(owner, "the lock is held")
        let from = ContinuousClock.now
        while ContinuousClock.now - from < .seconds(4) {  // lock_ttl is 3 s
            XCTAssertEqual(try value("oauth:{my-api}:lock", on: master), owner, "renewed past its TTL")
            XCTAssertTrue(stillRunning(), "no success while no replica has the token: \(diagnostics())")
            try await Task.sleep(for: .milliseconds(250))
        }
    }

    /// The checks shared by both tests once a replica acknowledged.
    private func checkSettled(replica: RedisServerProcess, outputs: [String]) async throws {
        XCTAssertEqual(spooledFiles(), [])
        let (text, row) = try await eventually("baton status is clear") {
            let found = try status()
            return found.json["awaiting_replicas"] == nil ? found : nil
        }
        XCTAssertEqual(row["status"] as? String, "ok", text)
        XCTAssertFalse(text.contains("awaiting"), text)
        let secret = try XCTUnwrap(try value("oauth:{my-api}:secret", on: master))
        XCTAssertEqual(try value("oauth:{my-api}:secret", on: replica), secret, "the replica has the rotated token")
        let refreshToken = try SecretSealer(prefix: "oauth", encryption: TestKeyring.encryption)
            .open(Array(secret.utf8), service: "my-api").refreshToken
        XCTAssertEqual(try provider.invalidGrants(), 0)
        for output in outputs {
            XCTAssertFalse(output.contains(refreshToken), "no refresh token in any output")
        }
        // The stored token is the valid one.
        let next = try BatonExecutable.run(["refresh", "my-api", "--force", "--config", config])
        XCTAssertEqual(next.status, 0, next.output)
        XCTAssertEqual(try provider.invalidGrants(), 0)
    }

    // MARK: - Tests

    func testBatonRefreshWaitsForAReplica() async throws {
        let (refresh, output) = try BatonExecutable.start(["refresh", "my-api", "--force", "--config", config])
        defer {
            refresh.terminate()
            try? FileManager.default.removeItem(at: output)
        }
        let log = { (try? String(contentsOf: output, encoding: .utf8)) ?? "" }
        try await eventually("each attempt that falls short is reported", diagnostics: log) {
            log().components(separatedBy: "only 0 of 1 replicas acknowledged").count > 2
        }
        try await checkWaiting(stillRunning: { refresh.isRunning }, diagnostics: log)

        let replica = try await startReplica()
        XCTAssertTrue(refresh.waitForExit(timeout: 60), log())
        XCTAssertEqual(refresh.terminationStatus, 0, log())
        XCTAssertTrue(log().contains("is on enough replicas now"), log())
        let printed = try XCTUnwrap(log().split(separator: "\n").last.map(String.init))
        let record = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(printed.utf8)) as? [String: Any])
        let stored = try XCTUnwrap(try value("oauth:{my-api}:token", on: master))
        XCTAssertEqual(
            (try JSONSerialization.jsonObject(with: Data(stored.utf8)) as? [String: Any])?["access_token"] as? String,
            record["access_token"] as? String, "the record printed is the one stored")
        try await checkSettled(replica: replica, outputs: [log()])
    }

    func testBatonServeWaitsForAReplicaAndLogsEachAttempt() async throws {
        let (serve, output) = try BatonExecutable.start(["serve", "--config", config, "--id", "replica-1"])
        defer {
            serve.terminate(grace: 5)
            try? FileManager.default.removeItem(at: output)
        }
        let log = { (try? String(contentsOf: output, encoding: .utf8)) ?? "" }
        try await eventually("replicas_pending is logged for each attempt", diagnostics: log) {
            log().components(separatedBy: #""event":"replicas_pending""#).count > 2
        }
        XCTAssertFalse(log().contains(#""event":"refreshed""#), "not refreshed before a replica has the token")
        try await checkWaiting(stillRunning: { !log().contains(#""event":"refreshed""#) }, diagnostics: log)

        let replica = try await startReplica()
        try await eventually("the acknowledgement and the refresh are logged", timeout: .seconds(30), diagnostics: log)
        {
            log().contains(#""event":"replicas_acknowledged""#) && log().contains(#""event":"refreshed""#)
        }
        serve.signal(SIGTERM)
        XCTAssertTrue(serve.waitForExit(timeout: 30), log())
        XCTAssertEqual(serve.terminationStatus, 0, log())
        try await checkSettled(replica: replica, outputs: [log()])
    }
}
