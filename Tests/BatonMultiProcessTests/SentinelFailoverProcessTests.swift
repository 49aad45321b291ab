import BatonCommandLine
import BatonRedis
import BatonSupport
import BatonTestSupport
import BatonTokens
import Foundation
import XCTest

/// Three `baton serve` replicas on a `redis-sentinel://` URL refreshing rotating tokens while the
/// master is killed (-9) with a refresh in flight: Sentinel promotes a replica, Baton follows, and
/// with `persist_replicas: 1` no rotated refresh token is lost (zero `invalid_grant`, and each
/// service's stored refresh token is the one the provider still honours).
final class SentinelFailoverProcessTests: XCTestCase {
    private let services = (1...6).map { "api-\($0)" }

    func testKillingTheMasterMidRefreshLosesNoRotatedToken() async throws {
        let group = try await RedisSentinelGroup.start(
            dataArguments: ["--min-replicas-to-write", "1", "--min-replicas-max-lag", "10"])
        // Tokens live 4 s and are refreshed 2 s ahead: a refresh somewhere every few hundred ms.
        // Each answer comes 0.4 s after the provider rotated: a refresh is in flight most of the time.
        let provider = try FakeOAuthProvider.start(lifetime: 4)
        try provider.setMode("normal", delay: 0.4)
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent(
            "baton-sentinel-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        var replicas: [(ChildProcess, URL)] = []
        addTeardownBlock {
            for (process, _) in replicas where process.isRunning { process.terminate(grace: 5) }
            provider.stop()
            group.stop()
            try? FileManager.default.removeItem(at: folder)
        }
        var configuration = TestConfiguration(
            redisURL: group.url,
            settings: [
                "lock_ttl": "5s", "lock_wait": "2s", "persist_replicas": 1, "persist_timeout": "1s",
                "state_dir": folder.appendingPathComponent("state").path,
            ])
        for service in services {
            configuration = configuration.service(
                service, tokenURL: provider.tokenURL, secretFile: true,
                ["refresh_buffer": "2s", "request_timeout": "3s"])
        }
        let config = try configuration.write(in: folder)
        for service in services {
            let tokenFile = folder.appendingPathComponent("seed-\(service)")
            try provider.seedRefreshToken().write(to: tokenFile, atomically: true, encoding: .utf8)
            let seeded = try BatonExecutable.run(
                ["seed", service, "--refresh-token-file", tokenFile.path, "--config", config])
            XCTAssertEqual(seeded.status, 0, seeded.output)
        }
        for id in ["replica-1", "replica-2", "replica-3"] {
            replicas.append(try BatonExecutable.start(["serve", "--config", config, "--id", id]))
        }
        let client = try RedisClient(url: group.url)
        defer { client.shutDown() }
        let store = TokenStore(client: client, prefix: "oauth")
        func diagnostics() -> String {
            let logs = replicas.map {
                (try? String(contentsOf: $0.1, encoding: .utf8)).map { String($0.suffix(4000)) } ?? ""
            }
            return "replica logs:\n" + logs.joined(separator: "\n---\n")
                + "\nprovider: \((try? provider.stats()) ?? [:])"
        }
        func versions() async -> [String: Int64] {
            var found: [String: Int64] = [:]
            for service in services {
                if let record = try? await store.record(service), record.status == .ok {
                    found[service] = record.version
                }
            }
            return found
        }

        try await eventually("every service has been refreshed twice", timeout: .seconds(60), diagnostics: diagnostics)
        {
            await versions().filter { $0.value >= 3 }.count == self.services.count
        }
        try await eventually("a refresh is in flight at the provider", timeout: .seconds(30), diagnostics: diagnostics)
        {
            try provider.requestsInFlight() > 0
        }
        let atKill = await versions()
        let killedMaster = try group.killMaster()
        let killed = ContinuousClock.now

        // The first refresh stored after the kill, whichever service it is.
        let firstRefresh = try await eventually(
            "a refresh succeeds after the kill", timeout: .seconds(90), diagnostics: diagnostics
        ) { () async -> Duration? in
            let now = await versions()
            return now.contains { service, version in version > (atKill[service] ?? 0) }
                ? ContinuousClock.now - killed : nil
        }
        _ = try await group.waitForFailover(awayFrom: killedMaster)
        // Every service goes on refreshing: at least two more rotations each, each one
        // presenting the refresh token the previous one stored.
        try await eventually(
            "every service refreshes twice more after the failover", timeout: .seconds(120), diagnostics: diagnostics
        ) {
            let now = await versions()
            return self.services.allSatisfy { (now[$0] ?? 0) >= (atKill[$0] ?? 0) + 2 }
        }
        print("kill -9 of the master to the first successful refresh after it: \(firstRefresh.shortDescription)")

        for (process, _) in replicas { process.terminate(grace: 10) }
        let ledger = try provider.ledger()
        let invalid = ledger["invalid_grant"] as? [String: Int] ?? [:]
        XCTAssertEqual(invalid.values.reduce(0, +), 0, "invalid_grant by cause: \(invalid)\n\(diagnostics())")
        // Each service's stored refresh token is its family's one valid token at the provider.
        let tokens = ledger["tokens"] as? [[String: Any]] ?? []
        let valid = Set(tokens.filter { $0["state"] as? String == "valid" }.compactMap { $0["fp"] as? String })
        for service in services {
            let stored = try await store.secret(service)?.refreshToken
            let fingerprint = Digest.sha256(Array((stored ?? "").utf8)).prefix(8).map { String(format: "%02x", $0) }
                .joined()
            XCTAssertTrue(
                valid.contains(fingerprint), "\(service): the stored refresh token is not valid at the provider")
        }
        let spooled =
            (try? FileManager.default.contentsOfDirectory(atPath: folder.appendingPathComponent("state/spool").path))
            ?? []
        XCTAssertEqual(spooled.filter { $0.hasSuffix(".json") }, [], "nothing left in the spool")
    }
}
