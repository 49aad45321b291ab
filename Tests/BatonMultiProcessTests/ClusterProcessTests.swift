import BatonCommandLine
import BatonRedis
import BatonSupport
import BatonTestSupport
import BatonTokens
import Foundation
import XCTest

/// Three `baton serve` replicas on a `redis-cluster://` URL refreshing rotating tokens of
/// services spread over every master: slot migrations while they run cause no warning and lose no
/// forced-refresh request; a master killed (-9) with a refresh in flight fails over to its replica
/// and, with `persist_replicas: 1`, no rotated refresh token is lost.
final class ClusterProcessTests: RedisTestCase {
    private let services = (1...6).map { "api-\($0)" }
    private var cluster: RedisClusterProcess!
    private var provider: FakeOAuthProvider!
    private var folder: URL!
    private var config: String!
    private var replicas: [(ChildProcess, URL)] = []
    private var client: RedisClient!
    private var store: TokenStore!

    /// Tokens live 4 s and are refreshed 2 s ahead: a refresh somewhere every few hundred ms. Each
    /// answer comes 0.4 s after the provider rotated: a refresh is in flight most of the time.
    /// - Parameter lockTTL: must outlast a failover (`cluster-node-timeout` 2 s, then an election)
    ///   when a master is killed: a lease that expires on the promoted replica before its holder
    ///   stored the rotated token lets another replica present the old one (`invalid_grant`).
    private func start(lockTTL: String = "5s") async throws {
        cluster = try await startCluster()
        provider = try FakeOAuthProvider.start(lifetime: 4)
        try provider.setMode("normal", delay: 0.4)
        folder = FileManager.default.temporaryDirectory.appendingPathComponent("baton-cluster-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        addTeardownBlock { [self] in
            for (process, _) in replicas where process.isRunning { process.terminate(grace: 5) }
            provider.stop()
            try? FileManager.default.removeItem(at: folder)
        }
        var configuration = TestConfiguration(
            redisURL: cluster.url,
            settings: [
                "lock_ttl": lockTTL, "lock_wait": "2s", "persist_replicas": 1, "persist_timeout": "1s",
                "state_dir": folder.appendingPathComponent("state").path,
            ])
        for service in services {
            configuration = configuration.service(
                service, tokenURL: provider.tokenURL, secretFile: true,
                ["refresh_buffer": "2s", "request_timeout": "3s"])
        }
        config = try configuration.write(in: folder)
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
        client = try makeClient(cluster)
        store = TokenStore(client: client, prefix: "oauth")
        try await eventually("every service has been refreshed twice", timeout: .seconds(60), diagnostics: diagnostics)
        {
            await self.versions().filter { $0.value >= 3 }.count == self.services.count
        }
    }

    private func logs() -> [String] {
        replicas.map { (try? String(contentsOf: $0.1, encoding: .utf8)) ?? "" }
    }

    private func diagnostics() -> String {
        "replica logs:\n" + logs().map { String($0.suffix(4000)) }.joined(separator: "\n---\n")
            + "\nprovider: \((try? provider.stats()) ?? [:])"
    }

    private func versions() async -> [String: Int64] {
        var found: [String: Int64] = [:]
        for service in services {
            if let record = try? await store.record(service), record.status == .ok { found[service] = record.version }
        }
        return found
    }

    /// Waits until every service has refreshed `count` more times than in `since`.
    private func everyServiceRefreshes(_ count: Int64, since: [String: Int64], _ what: String) async throws {
        try await eventually(what, timeout: .seconds(120), diagnostics: diagnostics) {
            let now = await self.versions()
            return self.services.allSatisfy { (now[$0] ?? 0) >= (since[$0] ?? 0) + count }
        }
    }

    /// Stops the replicas, then checks the provider's ledger: no `invalid_grant`, and each
    /// service's stored refresh token is its family's one valid token; nothing left in the spool.
    private func checkNoRotatedTokenWasLost() async throws {
        for (process, _) in replicas { process.terminate(grace: 10) }
        let ledger = try provider.ledger()
        let invalid = ledger["invalid_grant"] as? [String: Int] ?? [:]
        XCTAssertEqual(invalid.values.reduce(0, +), 0, "invalid_grant by cause: \(invalid)\n\(diagnostics())")
        let tokens = ledger["tokens"] as? [[String: Any]] ?? []
        let valid = Set(tokens.filter { $0["state"] as? String == "valid" }.compactMap { $0["fp"] as? String })
        for service in services {
            let stored = try await store.secret(service)?.refreshToken
            XCTAssertTrue(
                valid.contains(Self.fingerprint(stored ?? "")),
                "\(service): the stored refresh token is not valid at the provider")
        }
        let spooled =
            (try? FileManager.default.contentsOfDirectory(atPath: folder.appendingPathComponent("state/spool").path))
            ?? []
        XCTAssertEqual(spooled.filter { $0.hasSuffix(".json") }, [], "nothing left in the spool")
    }

    func testSlotMigrationsWhileServingCauseNoWarningAndLoseNoRequest() async throws {
        try await start()
        // Every service's slot, the registry's and the request list's move to another master,
        // each while refreshes run; then redis-cli reshards a batch of slots.
        let requests = TokenKeys.refreshRequests(prefix: "oauth")
        let slots =
            services.map { HashSlot.of("oauth:{\($0)}:token") }
            + [HashSlot.of(TokenKeys.services(prefix: "oauth")), HashSlot.of(requests)]
        var since = await versions()
        for slot in slots {
            let owner = try cluster.masterPort(forSlot: slot)
            try await cluster.migrateSlot(slot, to: try cluster.masterPorts().first { $0 != owner }!)
        }
        let masters = try cluster.masterPorts()
        try await cluster.reshard(slots: 300, from: masters[0], to: masters[1])
        try await everyServiceRefreshes(2, since: since, "every service refreshes twice after the moves")

        // Forced refreshes through the request list, now on another node than when the
        // replicas started consuming it: each is served.
        since = await versions()
        for service in services {
            let request = try JSONSerialization.data(
                withJSONObject: ["service": service, "version": since[service] ?? 0], options: [.sortedKeys])
            try await client.send("LPUSH", requests, Array(request))
        }
        try await everyServiceRefreshes(1, since: since, "every forced request is served")
        try await eventually("the request list and the processing lists are empty", diagnostics: diagnostics) {
            var lengths = [try await self.client.send("LLEN", requests).integer ?? -1]
            for id in ["replica-1", "replica-2", "replica-3"] {
                lengths.append(try await self.client.send("LLEN", "{\(requests)}:processing:\(id)").integer ?? -1)
            }
            return lengths.allSatisfy { $0 == 0 }
        }

        // `baton status` reads the registry (one key) and every service's keys across the nodes.
        let status = try BatonExecutable.run(["status", "--json", "--config", config])
        XCTAssertEqual(status.status, 0, status.output)
        let rows = try JSONSerialization.jsonObject(with: Data(status.output.utf8)) as? [[String: Any]] ?? []
        XCTAssertEqual(Set(rows.compactMap { $0["service"] as? String }), Set(services), status.output)

        let warnings = logs().flatMap { $0.split(separator: "\n") }.filter {
            $0.contains("\"level\":\"warn\"") || $0.contains("\"level\":\"error\"")
        }
        XCTAssertEqual(warnings, [], "nobody saw the slots move")
        try await checkNoRotatedTokenWasLost()
    }

    func testKillingAMasterMidRefreshLosesNoRotatedToken() async throws {
        try await start(lockTTL: "15s")
        // A service whose refresh is at the provider now: the token it presented is still the
        // stored one, and the provider answers 0.4 s after rotating it.
        let victim = try await eventually(
            "a refresh is in flight at the provider", timeout: .seconds(30), diagnostics: diagnostics
        ) { () async throws -> String? in
            let presented = Set(
                (try self.provider.ledger()["inflight"] as? [[String: Any]] ?? []).compactMap {
                    $0["presented"] as? String
                })
            for service in self.services {
                if let stored = try await self.store.secret(service)?.refreshToken,
                    presented.contains(Self.fingerprint(stored))
                {
                    return service
                }
            }
            return nil
        }
        let atKill = await versions()
        let killed = try cluster.killMaster(ofSlot: HashSlot.of("oauth:{\(victim)}:token"))
        let killedAt = ContinuousClock.now
        try await cluster.waitForFailover(awayFrom: killed)
        let failedOver = ContinuousClock.now - killedAt
        // The crashed node comes back as the new master's replica, which acknowledges from then on.
        try await cluster.restartNode(port: killed)
        try await everyServiceRefreshes(2, since: atKill, "every service refreshes twice more after the failover")
        print(
            "kill -9 of the master of '\(victim)' mid-refresh: failover after \(failedOver.shortDescription), "
                + "every service refreshed twice more after \((ContinuousClock.now - killedAt).shortDescription)")
        try await checkNoRotatedTokenWasLost()
    }

    /// The provider's public name of a token (its ledger's `fp`).
    private static func fingerprint(_ token: String) -> String {
        Digest.sha256(Array(token.utf8)).prefix(8).map { String(format: "%02x", $0) }.joined()
    }
}
