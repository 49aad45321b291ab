import BatonConfig
import BatonLock
import BatonRedis
import BatonSupport
import BatonTestSupport
import Foundation
import XCTest

@testable import BatonTokens

/// `persist_replicas`: a rotated refresh token is done only once enough replicas acknowledged it,
/// against a real master and replicas started (and frozen, or missing) by each test.
final class ReplicaAcknowledgementTests: XCTestCase {
    private var master: RedisServerProcess!
    private var provider: FakeOAuthProvider!
    private var client: RedisClient!
    private var store: TokenStore!
    private var locks: LockService!
    private var folder: URL!
    private let reports = LockedBox<[ReplicaAcknowledgementReport]>([])

    override func setUpWithError() throws {
        master = try RedisServerProcess.start(arguments: RedisServerProcess.replicationFriendlyArguments)
        provider = try FakeOAuthProvider.start(lifetime: 30)
        client = try RedisClient(
            url: master.url,
            options: .init(
                connection: .init(commandTimeout: .seconds(2), reconnect: .init(giveUpAfter: .milliseconds(500)))))
        store = TokenStore(client: client, prefix: "oauth", encryption: TestKeyring.encryption)
        locks = try LockService(client: client, prefix: "oauth")
        folder = FileManager.default.temporaryDirectory.appendingPathComponent("baton-replicas-\(UUID().uuidString)")
    }

    override func tearDown() {
        locks?.shutDown()
        client?.shutDown()
        provider?.stop()
        master?.stop()
        try? FileManager.default.removeItem(at: folder)
    }

    // MARK: - Helpers

    private var spool: RotatedTokenSpool {
        RotatedTokenSpool(stateDirectory: folder.path, encryption: TestKeyring.encryption)
    }

    private func spooledFiles() -> [String] {
        ((try? FileManager.default.contentsOfDirectory(atPath: spool.directory)) ?? []).filter { $0.hasSuffix(".json") }
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

    private func refresher(_ acknowledgement: ReplicaAcknowledgement, replica: String = "holder") -> TokenRefresher {
        let reports = reports
        return TokenRefresher(
            store: store, locks: locks, replica: replica, spool: spool, acknowledgement: acknowledgement,
            onReplicaAcknowledgement: { report in reports.withLockedValue { $0.append(report) } })
    }

    /// `lock_ttl` 2 s, so that a wait for replicas longer than that shows the lease being renewed.
    private func service() throws -> (RefreshSettings, OAuthTokenProvider) {
        let json = TestConfiguration(settings: ["lock_ttl": "2s", "lock_wait": "5s"])
            .service("my-api", tokenURL: provider.tokenURL, ["refresh_buffer": "10s", "request_timeout": "1s"]).json
        let configuration = try BatonConfiguration.parse(Array(json.utf8), environment: TestConfiguration.environment)
        let service = configuration.services[0]
        return (RefreshSettings(service, configuration: configuration), OAuthTokenProvider(service: service))
    }

    private func refresh(_ refresher: TokenRefresher) async throws -> TokenRecord {
        try await startRefresh(refresher).value
    }

    /// A forced refresh in a task of its own; `finished` turns true when it ends.
    private func startRefresh(_ refresher: TokenRefresher, finished: LockedBox<Bool> = LockedBox(false)) throws
        -> Task<TokenRecord, any Error>
    {
        let (settings, provider) = try service()
        return Task {
            defer { finished.withLockedValue { $0 = true } }
            return try await refresher.refresh(
                "my-api", settings: settings, provider: provider, request: .forced(seenVersion: nil))
        }
    }

    private func seed() async throws {
        try await store.seed(service: "my-api", refreshToken: try provider.seedRefreshToken(), replica: "ops")
    }

    private func secret(on server: RedisServerProcess) throws -> String? {
        let connection = try RedisConnection(url: server.url)
        defer { connection.close() }
        let bytes = try connection.send(RedisCommand("GET", "oauth:{my-api}:secret")).bytes
        return try bytes.map {
            try SecretSealer(prefix: "oauth", encryption: TestKeyring.encryption).open($0, service: "my-api")
                .refreshToken
        }
    }

    private var shortfalls: [ReplicaAcknowledgementReport] {
        reports.withLockedValue { $0 }.filter { !$0.isAcknowledged }
    }

    private func diagnostics() -> String {
        "reports: \(reports.withLockedValue { $0 })\nspool: \(spooledFiles())\nmaster log:\n\(master.log.suffix(2000))"
    }

    // MARK: - Tests

    func testALiveReplicaAcknowledgesAndNothingIsLeftBehind() async throws {
        let replica = try await startReplica()
        try await seed()
        _ = try await refresh(refresher(.none))
        XCTAssertEqual(try master.calls(of: "wait"), 0, "persist_replicas 0 sends no WAIT")

        let record = try await refresh(refresher(.init(replicas: 1, timeout: .seconds(5))))
        XCTAssertEqual(record.status, .ok)
        XCTAssertGreaterThanOrEqual(try master.calls(of: "wait"), 1)
        XCTAssertEqual(spooledFiles(), [], "the spool file goes once a replica has the token")
        XCTAssertEqual(try secret(on: replica), try secret(on: master), "the replica has the rotated token")
        let awaiting = try await store.awaitingReplicas(["my-api"])
        XCTAssertTrue(awaiting.isEmpty)
        XCTAssertTrue(reports.withLockedValue { $0 }.isEmpty, "nothing fell short: \(diagnostics())")
        XCTAssertEqual(try provider.invalidGrants(), 0)
    }

    func testWithNoReplicaTheRefreshWaitsHoldingTheLockUntilOneAcknowledges() async throws {
        try await seed()
        let waiting = refresher(.init(replicas: 1, timeout: .milliseconds(200)))
        let finished = LockedBox(false)
        let refreshing = try startRefresh(waiting, finished: finished)
        try await eventually("attempts fall short and are retried", diagnostics: diagnostics) {
            shortfalls.count >= 3
        }
        XCTAssertEqual(spooledFiles().count, 1, "the rotated token stays in the spool")
        let marked = try await eventually("the wait is marked in Redis", diagnostics: diagnostics) {
            try await store.awaitingReplicas(["my-api"])["my-api"]
        }
        XCTAssertEqual(marked.replica, "holder")
        XCTAssertEqual(marked.required, 1)
        XCTAssertEqual(marked.acknowledged, 0)
        XCTAssertGreaterThanOrEqual(marked.attempts, 3)

        // The lease (2 s) is renewed for as long as the wait lasts: the same owner throughout.
        let owner = try await client.get("oauth:{my-api}:lock").map { String(decoding: $0, as: UTF8.self) }
        XCTAssertNotNil(owner)
        let heldFrom = ContinuousClock.now
        while ContinuousClock.now - heldFrom < .seconds(5) {
            let holder = try await client.get("oauth:{my-api}:lock").map { String(decoding: $0, as: UTF8.self) }
            XCTAssertEqual(holder, owner, "the lock stays held past its TTL while the token waits")
            XCTAssertFalse(finished.withLockedValue { $0 }, "no success before a replica has the token")
            try await Task.sleep(for: .milliseconds(200))
        }

        let replica = try await startReplica()
        let record = try await refreshing.value
        XCTAssertEqual(record.status, .ok)
        let storedRecord = try await store.record("my-api")
        XCTAssertEqual(storedRecord, record)
        XCTAssertEqual(spooledFiles(), [], diagnostics())
        let cleared = try await store.awaitingReplicas(["my-api"])
        XCTAssertTrue(cleared.isEmpty, "the mark is cleared")
        let lock = try await client.get("oauth:{my-api}:lock")
        XCTAssertNil(lock, "the lock is released")
        let late = try XCTUnwrap(reports.withLockedValue { $0 }.last)
        XCTAssertTrue(late.isAcknowledged, "a late acknowledgement is reported: \(diagnostics())")
        XCTAssertGreaterThan(late.attempt, shortfalls.count)
        XCTAssertEqual(try secret(on: replica), try secret(on: master))
        // Every attempt wrote the same version: a repeat changes nothing but appends its event.
        let events = try await store.events("my-api", count: 1000).filter { $0.kind != .seeded }
        XCTAssertGreaterThan(events.count, shortfalls.count)
        XCTAssertEqual(Set(events.map(\.kind)), [.refreshed], "\(events)")
        XCTAssertEqual(Set(events.map { $0.fields["version"] }), [String(record.version)])
        XCTAssertEqual(events.filter { $0.fields["repeated"] == "1" }.count, events.count - 1)
        let storedSecret = try await store.secret("my-api")
        XCTAssertEqual(storedSecret?.fence, record.version)

        // The rotated token is the valid one: the next refresh uses it.
        _ = try await refresh(refresher(.init(replicas: 1, timeout: .seconds(5))))
        XCTAssertEqual(try provider.invalidGrants(), 0)
    }

    func testAnAbandonedWaitLeavesTheSpoolForAReplayThatWaitsToo() async throws {
        let replica = try await startReplica()
        try await seed()
        replica.signal(SIGSTOP)  // connected, but acknowledging nothing
        defer { replica.signal(SIGCONT) }
        let waiting = refresher(.init(replicas: 1, timeout: .milliseconds(200)))
        let refreshing = try startRefresh(waiting)
        try await eventually("an attempt falls short", diagnostics: diagnostics) { shortfalls.count >= 2 }
        // An operator force-releases the lock: the lease is lost, so the wait is abandoned.
        try await client.send("DEL", "oauth:{my-api}:lock")
        do {
            _ = try await refreshing.value
            XCTFail("a refresh whose token no replica has is not a success")
        } catch RefreshError.replicasNotAcknowledged(let service, let acknowledged, let required) {
            XCTAssertEqual(service, "my-api")
            XCTAssertEqual(acknowledged, 0)
            XCTAssertEqual(required, 1)
        }
        XCTAssertEqual(spooledFiles().count, 1, "the spool file stays for a replay")

        // A replay while the replica is still frozen leaves it too, and counts the attempt.
        let attemptsBefore = try await store.awaitingReplicas(["my-api"])["my-api"]?.attempts ?? 0
        let stillShort = try await waiting.replaySpool()
        XCTAssertEqual(stillShort, .init(stored: 0, superseded: 0, awaitingReplicas: 1))
        XCTAssertEqual(spooledFiles().count, 1)
        let marked = try await store.awaitingReplicas(["my-api"])["my-api"]
        XCTAssertEqual(marked?.attempts, attemptsBefore + 1, "replays count on from the refresh's attempts")

        replica.signal(SIGCONT)
        let replayed = try await eventually("a replay is acknowledged", timeout: .seconds(30), diagnostics: diagnostics)
        {
            let replay = try await waiting.replaySpool()
            return replay.stored == 1 ? replay : nil
        }
        XCTAssertEqual(replayed.awaitingReplicas, 0)
        XCTAssertEqual(spooledFiles(), [])
        let cleared = try await store.awaitingReplicas(["my-api"])
        XCTAssertTrue(cleared.isEmpty)
        XCTAssertTrue(reports.withLockedValue { $0 }.last?.isAcknowledged == true, diagnostics())
        XCTAssertEqual(try secret(on: replica), try secret(on: master))
        _ = try await refresh(refresher(.none))
        XCTAssertEqual(try provider.invalidGrants(), 0, "the spooled token was the valid one")
    }

    /// The fenced persist run again with the same record and token (a retry) changes nothing but
    /// the events: no new version, no new fence, the same record.
    func testARepeatedPersistChangesNothing() async throws {
        try await seed()
        let fence = try await client.send("INCR", "oauth:{my-api}:fence").integer!
        let record = TokenRecord(
            service: "my-api", accessToken: "at", tokenType: "Bearer", expiresAt: 4_000_000_000_000, scope: nil,
            version: fence, refreshedAt: 1, refreshedBy: "holder")
        let used = try await store.secret("my-api")?.identity
        let first = try await store.persist(
            record, service: "my-api", secret: "rt-2", fence: fence, usedSecret: used, event: .refreshed,
            replica: "holder", owner: "")
        let stored = try await store.record("my-api")
        let again = try await store.persist(
            record, service: "my-api", secret: "rt-2", fence: fence, usedSecret: used, event: .refreshed,
            replica: "holder", owner: "")
        XCTAssertEqual(first, .written(version: fence, lockHeld: false, secret: .written))
        XCTAssertEqual(again, first)
        let (recordAfter, secretAfter) = (try await store.record("my-api"), try await store.secret("my-api"))
        XCTAssertEqual(recordAfter, stored)
        XCTAssertEqual(secretAfter?.fence, fence)
        let counter = try await client.send("GET", "oauth:{my-api}:fence").integer
        XCTAssertEqual(counter, fence)
        let events = try await store.events("my-api", count: 2)
        XCTAssertEqual(events.map { $0.fields["repeated"] }, ["1", nil])

        // Anything else is no repeat: another record with the same token gets a new version.
        var changed = record
        changed.accessToken = "at-2"
        let newer = try await store.persist(
            changed, service: "my-api", secret: "rt-2", fence: fence, usedSecret: used, event: .refreshed,
            replica: "holder", owner: "")
        guard case .written(let version, _, .written) = newer else { return XCTFail("\(newer)") }
        XCTAssertGreaterThan(version, fence)
    }
}
