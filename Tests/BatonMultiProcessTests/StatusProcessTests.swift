import BatonCommandLine
import BatonRedis
import BatonSupport
import BatonTestSupport
import BatonTokens
import Foundation
import XCTest

/// `baton status` for people (issue 13): next refresh, failures since the last success, the lock
/// holder while a refresh runs, a service that never had a token, and the live replicas.
final class StatusProcessTests: XCTestCase {
    func testStatusShowsScheduleFailuresLockHolderAndReplicas() async throws {
        let redis = try RedisServerProcess.start()
        addTeardownBlock { redis.stop() }
        let provider = try FakeOAuthProvider.start(lifetime: 600)
        addTeardownBlock { provider.stop() }
        let client = try RedisClient(url: redis.url)
        addTeardownBlock { client.shutDown() }
        let store = TokenStore(client: client, prefix: "oauth", encryption: TestKeyring.encryption)
        let now = try await store.now()
        func record(_ service: String, token: String, expiresAt: Int64, status: TokenRecord.Status = .ok)
            -> TokenRecord
        {
            TokenRecord(
                service: service, accessToken: token, tokenType: "Bearer", expiresAt: expiresAt, scope: nil,
                version: 0, refreshedAt: now, refreshedBy: "test", status: status,
                lastError: status == .ok ? nil : .init(code: "server_error", description: "down", at: now))
        }
        // healthy: a token for 10 minutes; failing: two failed attempts after a success; never: a
        // failure before any token; busy: healthy, with its lock held by someone.
        var fence: Int64 = 10
        func write(_ record: TokenRecord, _ event: TokenEvent.Kind) async throws {
            fence += 1
            _ = try await store.persist(
                record, service: record.service, secret: nil, fence: fence, usedSecret: nil, event: event,
                replica: "test", owner: "nobody")
        }
        for service in ["healthy", "failing", "busy"] {
            try await store.seed(service: service, refreshToken: "rt-\(service)", replica: "ops")
            try await write(record(service, token: "at", expiresAt: now + 600_000), .refreshed)
        }
        for _ in 0..<2 {
            try await write(
                record("failing", token: "at", expiresAt: now + 600_000, status: .refreshingFailed), .failed)
        }
        try await store.seed(service: "never", refreshToken: "rt-never", replica: "ops")
        try await write(record("never", token: "", expiresAt: 0, status: .needsReauth), .needsReauth)
        try await client.send("SET", "oauth:{busy}:lock", "worker-host:4242:00ff00ff00ff00ff", "PX", 20_000)

        // A replica, for the replicas line (its services are not these: it only needs to beat).
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("baton-status-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        addTeardownBlock { try? FileManager.default.removeItem(at: folder) }
        let config = try TestConfiguration(redisURL: redis.url, settings: ["state_dir": "state"])
            .service("other", tokenURL: provider.tokenURL, secretFile: true).write(in: folder)
        let (serve, log) = try BatonExecutable.start(["serve", "--config", config, "--id", "status-replica"])
        addTeardownBlock { serve.terminate() }
        try await eventually(
            "the replica's heartbeat", timeout: .seconds(30),
            diagnostics: { (try? String(contentsOf: log, encoding: .utf8)) ?? "" }
        ) {
            try await client.send("EXISTS", "{oauth:refresh-requests}:replica:status-replica").integer == 1
        }

        let json = try BatonExecutable.run([
            "status", "--json", "--redis", redis.url, "healthy", "failing", "never", "busy",
        ])
        XCTAssertEqual(json.status, 0, json.output)
        let rows = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(json.output.utf8)) as? [[String: Any]])
        let byName = Dictionary(uniqueKeysWithValues: rows.map { ($0["service"] as? String ?? "", $0) })
        let healthy = try XCTUnwrap(byName["healthy"])
        XCTAssertEqual(healthy["consecutive_failures"] as? Int, 0)
        XCTAssertEqual(healthy["has_access_token"] as? Bool, true)
        let dueIn = try XCTUnwrap(healthy["next_refresh_in_ms"] as? Int)
        XCTAssertTrue((500_000...541_000).contains(dueIn), "expiry in 600 s, buffer 60 s: \(dueIn)")
        XCTAssertNil(healthy["lock"])
        XCTAssertEqual(byName["failing"]?["consecutive_failures"] as? Int, 2)
        let never = try XCTUnwrap(byName["never"])
        XCTAssertEqual(never["has_access_token"] as? Bool, false)
        XCTAssertNil(never["expires_in_ms"], "no expiry for a service that never had a token")
        XCTAssertEqual(never["consecutive_failures"] as? Int, 1)
        let lock = try XCTUnwrap(byName["busy"]?["lock"] as? [String: Any])
        XCTAssertEqual(lock["holder"] as? String, "worker-host:4242")
        XCTAssertGreaterThan(lock["ttl_ms"] as? Int ?? 0, 0)

        let text = try BatonExecutable.run(["status", "--redis", redis.url, "healthy", "failing", "never", "busy"])
        XCTAssertEqual(text.status, 0, text.output)
        let lines = text.output.split(separator: "\n").map(String.init)
        func line(_ service: String) -> String { lines.first { $0.hasPrefix(service + " ") } ?? "" }
        XCTAssertTrue(line("never").contains("no token yet"), text.output)
        XCTAssertNil(line("never").range(of: #"-[0-9]+h"#, options: .regularExpression), line("never"))
        XCTAssertTrue(line("healthy").contains("in 8m5"), "due at expiry minus the 60 s buffer: \(text.output)")
        XCTAssertTrue(line("busy").contains("refreshing: lock held by worker-host:4242"), text.output)
        XCTAssertTrue(
            lines.contains { $0.hasPrefix("replicas: status-replica (\(BatonDefaults.version), up ") }, text.output)
    }
}
