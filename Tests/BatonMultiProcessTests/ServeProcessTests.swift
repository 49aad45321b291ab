import BatonCommandLine
import BatonRedis
import BatonTestSupport
import BatonTokens
import Foundation
import XCTest

/// `baton serve` replicas as real processes, a real redis-server and the fake provider.
final class ServeProcessTests: XCTestCase {
    private var redis: RedisServerProcess!
    private var provider: FakeOAuthProvider!
    private var client: RedisClient!
    private var store: TokenStore!
    private var configPath = ""
    private var replicas: [String: (ChildProcess, URL)] = [:]
    private var configuration = TestConfiguration()
    private var folder: URL!

    private func start(lifetime: Double, persistentRedis: Bool = false) throws {
        // A persistent server runs with the durability settings docker-compose.yml ships, read from it.
        redis = try RedisServerProcess.start(
            persistent: persistentRedis,
            arguments: persistentRedis ? try ShippedDeployment.redisDurabilityArguments() : [])
        provider = try FakeOAuthProvider.start(lifetime: lifetime)
        client = try RedisClient(
            url: redis.url, options: .init(connection: .init(reconnect: .init(giveUpAfter: .seconds(5))), poolSize: 16))
        store = TokenStore(client: client, prefix: "oauth", encryption: TestKeyring.encryption)
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("baton-serve-\(UUID().uuidString)")
        self.folder = folder
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        configuration = TestConfiguration(
            redisURL: redis.url,
            settings: [
                "lock_ttl": "5s", "lock_wait": "2s", "forced_refresh_min_interval": "1s",
                "state_dir": "state",
            ]
        )
        .service(
            "my-api", tokenURL: provider.tokenURL, secretFile: true,
            ["refresh_buffer": "2s", "request_timeout": "4500ms"])
        configPath = try configuration.write(in: folder)
        addTeardownBlock { [self] in
            for (process, log) in replicas.values {
                process.terminate(grace: 3)
                try? FileManager.default.removeItem(at: log)
            }
            client.shutDown()
            provider.stop()
            redis.stop()
            try? FileManager.default.removeItem(at: folder)
        }
        try provider.seedRefreshToken().write(
            to: folder.appendingPathComponent("rt"), atomically: true, encoding: .utf8)
        let seeded = try BatonExecutable.run([
            "seed", "my-api", "--refresh-token-file", folder.appendingPathComponent("rt").path, "--config", configPath,
        ])
        XCTAssertEqual(seeded.status, 0, seeded.output)
    }

    private func startReplica(_ id: String) throws {
        replicas[id] = try BatonExecutable.start(["serve", "--config", configPath, "--id", id])
    }

    private func stopReplica(_ id: String) -> Int32? {
        guard let (process, _) = replicas[id] else { return nil }
        process.terminate(grace: 10)
        if process.terminationStatus != 0 {
            print("replica \(id) exited \(process.terminationStatus ?? -1); its log:\n\(log(id))")
        }
        return process.terminationStatus
    }

    private func log(_ id: String) -> String {
        replicas[id].flatMap { try? String(contentsOf: $0.1, encoding: .utf8) } ?? ""
    }

    private func waitForRecord(newerThan version: Int64 = 0, timeout: Duration = .seconds(15)) async throws
        -> TokenRecord
    {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            if let record = try await store.record("my-api"), record.version > version, record.status == .ok {
                return record
            }
            try await Task.sleep(for: .milliseconds(50))
        }
        throw NoNewerRecord(version: version)
    }

    /// The refreshed events in the audit stream, oldest first: (stream time ms, version, replica).
    private func refreshedEvents() async throws -> [(Int64, Int64, String)] {
        let reply = try await client.send("XRANGE", "oauth:{my-api}:events", "-", "+")
        return (reply.array ?? []).compactMap { entry in
            guard let parts = entry.array, let id = parts.first?.string, let fields = parts.last?.array else {
                return nil
            }
            var map: [String: String] = [:]
            for index in stride(from: 0, to: fields.count - 1, by: 2) {
                map[fields[index].string ?? ""] = fields[index + 1].string ?? ""
            }
            guard map["event"] == "refreshed", let time = Int64(id.split(separator: "-")[0]),
                let version = Int64(map["version"] ?? "")
            else { return nil }
            return (time, version, map["replica"] ?? "")
        }
    }

    func testStampedeThreeReplicasFiftyWorkers() async throws {
        try start(lifetime: 5)
        for id in ["replica-1", "replica-2", "replica-3"] { try startReplica(id) }
        _ = try await waitForRecord()
        let started = ContinuousClock.now
        let runFor = Duration.seconds(33)
        let tokens = TokenClient(client: client)
        let store = self.store!
        let outcome = try await withThrowingTaskGroup(of: (fetches: Int, expired: Int).self) { group in
            for _ in 0..<50 {
                group.addTask {
                    var fetches = 0
                    var expired = 0
                    while ContinuousClock.now - started < runFor {
                        let record = try await tokens.accessToken(for: "my-api", wait: .seconds(5))
                        let now = try await store.now()
                        if record.isExpired(at: now) { expired += 1 }
                        fetches += 1
                        try await Task.sleep(for: .milliseconds(Int64.random(in: 20...120)))
                    }
                    return (fetches, expired)
                }
            }
            var total = (fetches: 0, expired: 0)
            for try await result in group {
                total.fetches += result.fetches
                total.expired += result.expired
            }
            return total
        }
        for id in ["replica-1", "replica-2", "replica-3"] {
            XCTAssertEqual(stopReplica(id), 0, "SIGTERM exits 0: \(log(id))")
        }

        let calls = try provider.tokenRequests()
        let events = try await refreshedEvents()
        let gaps = zip(events.dropFirst(), events).map { $0.0 - $1.0 }
        let byReplica = Dictionary(grouping: events, by: \.2).mapValues(\.count)
        print(
            "stampede: \(calls) provider calls, \(events.count) refreshes over \(runFor), by replica \(byReplica), min gap \(gaps.min() ?? 0) ms, \(outcome.fetches) worker fetches, \(outcome.expired) expired, invalid_grant \(try provider.invalidGrants())"
        )
        XCTAssertEqual(try provider.invalidGrants(), 0)
        XCTAssertEqual(outcome.expired, 0, "no worker was ever handed an expired token")
        XCTAssertGreaterThanOrEqual(events.count, 10, "at least ten expiries covered")
        XCTAssertEqual(calls, events.count, "every provider call is one recorded refresh")
        XCTAssertEqual(Set(events.map(\.1)).count, events.count)
        // One refresh per token generation: the next one only when the token is due again (3 s for
        // a 5 s token with a 2 s buffer, minus up to 1 s of jitter).
        XCTAssertGreaterThanOrEqual(gaps.min() ?? 0, 1_900, "two refreshes of the same generation")
        XCTAssertLessThanOrEqual(calls, Int(runFor.seconds / 2) + 2)
    }

    func testForcedRefreshIsCoalescedAndNeverLost() async throws {
        try start(lifetime: 120)
        try startReplica("replica-1")
        try startReplica("replica-2")
        let first = try await waitForRecord()
        let before = try provider.tokenRequests()

        // 100 concurrent requests naming the same version: one provider call.
        let request = try JSONSerialization.data(
            withJSONObject: ["service": "my-api", "version": first.version], options: [.sortedKeys])
        let client = self.client!
        try await withThrowingTaskGroup(of: Void.self) { group in
            for _ in 0..<100 {
                group.addTask { try await client.send("LPUSH", "oauth:refresh-requests", Array(request)) }
            }
            try await group.waitForAll()
        }
        let forced: TokenRecord
        do {
            forced = try await waitForRecord(newerThan: first.version, timeout: .seconds(20))
        } catch {
            print("replica logs:\n\(log("replica-1"))\n\(log("replica-2"))")
            throw error
        }
        try await Task.sleep(for: .seconds(2))
        XCTAssertEqual(try provider.tokenRequests() - before, 1, "100 requests for one version: one provider call")
        let pending = try await client.send("LLEN", "oauth:refresh-requests").integer
        XCTAssertEqual(pending, 0, "every request was answered")

        // A request naming an older version causes none.
        try await client.send("LPUSH", "oauth:refresh-requests", Array(request))
        try await Task.sleep(for: .seconds(2))
        XCTAssertEqual(try provider.tokenRequests() - before, 1)

        // A request pushed while no replica runs is served once one starts.
        XCTAssertEqual(stopReplica("replica-1"), 0)
        XCTAssertEqual(stopReplica("replica-2"), 0)
        let current = try await store.record("my-api")
        XCTAssertEqual(current?.version, forced.version)
        let late = try JSONSerialization.data(
            withJSONObject: ["service": "my-api", "version": forced.version], options: [.sortedKeys])
        try await client.send("LPUSH", "oauth:refresh-requests", Array(late))
        try await Task.sleep(for: .seconds(1))
        XCTAssertEqual(try provider.tokenRequests() - before, 1, "nobody is running")
        try startReplica("replica-3")
        let served: TokenRecord
        do {
            served = try await waitForRecord(newerThan: forced.version, timeout: .seconds(20))
        } catch {
            print("replica-3's log:\n\(log("replica-3"))")
            throw error
        }
        XCTAssertGreaterThan(served.version, forced.version)
        XCTAssertEqual(try provider.tokenRequests() - before, 2)
        XCTAssertEqual(try provider.invalidGrants(), 0)
    }

    func testARequestTakenByAReplicaThatDiesIsServedByAnother() async throws {
        try start(lifetime: 300)
        try startReplica("replica-1")
        try startReplica("replica-2")
        let first = try await waitForRecord()
        let before = try provider.tokenRequests()
        // The forced refresh is slow, so the replica that takes the request still has it when killed.
        try provider.setMode("normal", count: 1, delayBefore: 3)
        let tokens = TokenClient(client: client)
        let version = first.version
        let worker = Task { try await tokens.accessToken(for: "my-api", newerThan: version, wait: .seconds(40)) }
        var taker: String?
        let deadline = ContinuousClock.now + .seconds(10)
        while taker == nil && ContinuousClock.now < deadline {
            for id in ["replica-1", "replica-2"] {
                if try await client.send("LLEN", "{oauth:refresh-requests}:processing:\(id)").integer == 1 {
                    taker = id
                }
            }
            try await Task.sleep(for: .milliseconds(20))
        }
        let victim = try XCTUnwrap(taker, "no replica took the request")
        replicas[victim]?.0.signal(SIGKILL)
        replicas[victim]?.0.waitForExit(timeout: 5)
        // The survivor notices the missing heartbeat (15 s TTL), puts the request back, and serves it.
        let record = try await worker.value
        XCTAssertGreaterThan(record.version, version)
        XCTAssertNotEqual(record.refreshedBy, victim)
        let left = try await client.send("LLEN", "{oauth:refresh-requests}:processing:\(victim)").integer
        XCTAssertEqual(left, 0)
        XCTAssertEqual(
            try provider.tokenRequests() - before, 1,
            "the dead replica's call was dropped by the provider; one call served the request")
        XCTAssertEqual(try provider.invalidGrants(), 0)
    }

    func testSIGHUPPicksUpAddedAndRemovedServices() async throws {
        try start(lifetime: 300)
        try startReplica("replica-1")
        _ = try await waitForRecord()
        // Add a client_credentials service (no seed needed) and reload.
        configPath =
            try configuration
            .service(
                "machine", tokenURL: provider.tokenURL, secretFile: true,
                ["grant": "client_credentials", "request_timeout": "4s"]
            )
            .write(in: folder)
        replicas["replica-1"]?.0.signal(SIGHUP)
        let deadline = ContinuousClock.now + .seconds(10)
        var machine: TokenRecord?
        while machine == nil && ContinuousClock.now < deadline {
            machine = try await store.record("machine")
            try await Task.sleep(for: .milliseconds(50))
        }
        XCTAssertEqual(machine?.status, .ok, "the added service was refreshed without a restart")
        // A broken file on SIGHUP is logged and ignored: the daemon keeps running.
        try "{ not json".write(toFile: configPath, atomically: true, encoding: .utf8)
        replicas["replica-1"]?.0.signal(SIGHUP)
        try await Task.sleep(for: .milliseconds(500))
        XCTAssertTrue(replicas["replica-1"]?.0.isRunning == true)
        XCTAssertTrue(log("replica-1").contains("config_reload_failed"))
        XCTAssertEqual(stopReplica("replica-1"), 0)
    }

    /// `config_reload_failed` quotes the configuration's problems: a redis_url holding a
    /// password (in the user-info or the query) must not reach the log.
    func testAReloadFailureNeverLogsTheRedisPassword() async throws {
        try start(lifetime: 300)
        try startReplica("replica-1")
        _ = try await waitForRecord()
        var broken = configuration
        broken.settings["redis_url"] = "valkeys://baton:hunter2-userinfo@cache:6380/0?password=hunter2-query"
        configPath = try broken.write(in: folder)
        XCTAssertTrue(try String(contentsOfFile: configPath, encoding: .utf8).contains("hunter2-query"))
        replicas["replica-1"]?.0.signal(SIGHUP)
        let deadline = ContinuousClock.now + .seconds(10)
        while !log("replica-1").contains("config_reload_failed") && ContinuousClock.now < deadline {
            try await Task.sleep(for: .milliseconds(50))
        }
        let logged = log("replica-1")
        XCTAssertTrue(logged.contains("config_reload_failed"), logged)
        XCTAssertTrue(logged.contains("redis_url: not a Redis URL"), logged)
        XCTAssertFalse(logged.contains("hunter2"), "a password reached the log: \(logged)")
        XCTAssertTrue(replicas["replica-1"]?.0.isRunning == true)
        XCTAssertEqual(stopReplica("replica-1"), 0)
    }

    func testKilledReplicaMidRefreshIsReplacedWithinTheLockTTL() async throws {
        try start(lifetime: 6)
        try startReplica("replica-1")
        try startReplica("replica-2")
        let first = try await waitForRecord()
        // The next token request is slow (before the provider does anything).
        try provider.setMode("normal", count: 1, delayBefore: 4)
        // Wait until a replica has held the lock for a while: that is the slow call.
        var holderPID: Int32?
        let deadline = ContinuousClock.now + .seconds(15)
        var heldSince: ContinuousClock.Instant?
        while holderPID == nil && ContinuousClock.now < deadline {
            if let owner = try await client.get("oauth:{my-api}:lock").map({ String(decoding: $0, as: UTF8.self) }) {
                heldSince = heldSince ?? ContinuousClock.now
                if ContinuousClock.now - heldSince! > .milliseconds(500) {
                    holderPID = Int32(owner.split(separator: ":").dropLast().last ?? "")
                }
            } else {
                heldSince = nil
            }
            try await Task.sleep(for: .milliseconds(20))
        }
        let pid = try XCTUnwrap(holderPID, "no replica held the lock through a slow refresh")
        let victim = try XCTUnwrap(replicas.first { $0.value.0.pid == pid }?.key)
        replicas[victim]?.0.signal(SIGKILL)
        replicas[victim]?.0.waitForExit(timeout: 5)
        let killedAt = ContinuousClock.now

        let next = try await waitForRecord(newerThan: first.version, timeout: .seconds(15))
        let took = ContinuousClock.now - killedAt
        print(
            "replica crash: \(victim) killed mid-refresh; version \(next.version) by \(next.refreshedBy) after \(took)")
        XCTAssertNotEqual(next.refreshedBy, victim)
        XCTAssertLessThan(took, .seconds(5 + 3), "within the lock TTL plus one retry")
        XCTAssertEqual(try provider.invalidGrants(), 0, "the refresh token was not burnt")
        XCTAssertEqual(try provider.stats()["abandoned"] as? Int, 1, "the provider dropped the dead replica's call")
        // And the service keeps being refreshed.
        let later = try await waitForRecord(newerThan: next.version, timeout: .seconds(10))
        XCTAssertEqual(later.status, .ok)
    }

    func testRedisRestartUnderTheDaemon() async throws {
        try start(lifetime: 4, persistentRedis: true)
        XCTAssertEqual(
            redis.extraArguments, ["--appendonly", "yes", "--appendfsync", "always"],
            "docker-compose.yml ships AOF with an fsync per write: a crash loses no rotated refresh token")
        try startReplica("replica-1")
        try startReplica("replica-2")
        let first = try await waitForRecord()
        let second = try await waitForRecord(newerThan: first.version)
        // A crash, not a clean shutdown (which would also write an RDB snapshot): what comes back
        // is what the append-only file had.
        redis.kill9()
        try redis.startAgain()
        let third = try await waitForRecord(newerThan: second.version, timeout: .seconds(20))
        let fourth = try await waitForRecord(newerThan: third.version, timeout: .seconds(10))
        XCTAssertEqual(fourth.status, .ok)
        XCTAssertEqual(try provider.invalidGrants(), 0, "no token lost across the restart")
        // Both replicas came through: with replica-1 stopped, replica-2 refreshes on its own.
        XCTAssertEqual(stopReplica("replica-1"), 0)
        let afterStop = try await store.record("my-api")?.version ?? fourth.version
        let fifth = try await waitForRecord(newerThan: afterStop, timeout: .seconds(10))
        XCTAssertEqual(fifth.refreshedBy, "replica-2", "replica-2's log:\n\(log("replica-2"))")
        XCTAssertEqual(try provider.invalidGrants(), 0)
    }

    /// Issue item 13: a replica whose definition of a service differs from the one its refresh
    /// token was seeded under refuses to refresh it, says so, and leaves the credential alone.
    func testAReplicaWithAnotherClientLeavesTheCredentialAlone() async throws {
        try start(lifetime: 2)
        let drifted =
            try configuration
            .service(
                "my-api", tokenURL: provider.tokenURL, secretFile: true,
                ["client_id": "another-client", "refresh_buffer": "2s"]
            )
            .write(in: folder, name: "drifted.json")
        replicas["drifted"] = try BatonExecutable.start(["serve", "--config", drifted, "--id", "drifted"])
        let deadline = ContinuousClock.now + .seconds(15)
        while !log("drifted").contains("\"event\":\"config_mismatch\"") {
            guard ContinuousClock.now < deadline else {
                return XCTFail("no config_mismatch logged:\n\(log("drifted"))")
            }
            try await Task.sleep(for: .milliseconds(50))
        }
        XCTAssertEqual(try provider.tokenRequests(), 0, "the drifted replica never called the provider")
        let status = try BatonExecutable.run(["status", "--config", drifted])
        XCTAssertTrue(status.output.contains("config_mismatch"), status.output)
        let agreeing = try BatonExecutable.run(["status", "--config", configPath])
        XCTAssertFalse(agreeing.output.contains("config_mismatch"), agreeing.output)
        // A replica with the seeding configuration refreshes it; the credential was not burnt.
        try startReplica("replica-1")
        let record = try await waitForRecord()
        XCTAssertEqual(record.refreshedBy, "replica-1")
        XCTAssertEqual(try provider.invalidGrants(), 0)
    }

    func testBadConfigurationIsRefusedWithEveryProblem() throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent(
            "baton-badserve-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        let path = folder.appendingPathComponent("bad.json").path
        try """
        {"lock_ttl": "forever", "services": {"x y": {"client_id": "c"}}}
        """.write(toFile: path, atomically: true, encoding: .utf8)
        let result = try BatonExecutable.run(["serve", "--config", path], timeout: 10)
        XCTAssertEqual(result.status, 2)
        for expected in ["lock_ttl", "services.x y", "services.x y.token_url"] {
            XCTAssertTrue(result.output.contains(expected), "\(expected) missing:\n\(result.output)")
        }
        let missing = try BatonExecutable.run(["serve"], environment: ["BATON_CONFIG": ""], timeout: 10)
        XCTAssertEqual(missing.status, 2)
    }
}

/// A wait for a newer record ran out: the test fails with this error.
struct NoNewerRecord: Error, CustomStringConvertible {
    let version: Int64
    var description: String { "no ok record newer than version \(version) appeared in time" }
}
