import BatonConfig
import BatonRedis
import BatonSupport
import BatonTestSupport
import BatonTokens
import Foundation
import XCTest

@testable import BatonCoordinator

/// The coordinator's forced-refresh handling, in process, against a real redis-server and the
/// fake provider: requests that race with change notifications, requests naming versions from
/// the future, poison entries, and entries stuck in a live replica's processing list.
final class ForcedRefreshTests: XCTestCase {
    private var redis: RedisServerProcess!
    private var provider: FakeOAuthProvider!
    private var client: RedisClient!
    private var store: TokenStore!
    /// Every coordinator a test started, stopped in `tearDown`.
    private var coordinators: [(replica: String, coordinator: Coordinator, running: Task<Void, Never>)] = []
    private let lines = LockedLines()
    private let replica = "replica-t"

    override func setUp() async throws {
        redis = try RedisServerProcess.start()
        provider = try FakeOAuthProvider.start(lifetime: 300)
        client = try RedisClient(url: redis.url, options: .init(poolSize: 16))
        store = TokenStore(client: client, prefix: "oauth", encryption: TestKeyring.encryption)
        try await store.seed(service: "my-api", refreshToken: try provider.seedRefreshToken(), replica: "ops")
    }

    override func tearDown() async throws {
        for started in coordinators { started.coordinator.stop() }
        for started in coordinators { await started.running.value }
        client?.shutDown()
        provider?.stop()
        redis?.stop()
    }

    /// Starts a coordinator for `my-api` as `replica` (default: ``replica``), with `encryption`.
    private func startCoordinator(
        replica: String? = nil, encryption: SecretEncryption = TestKeyring.encryption,
        housekeeping: Duration = .seconds(3), forcedRefreshMinInterval: String = "1s"
    ) throws {
        let replica = replica ?? self.replica
        let json = TestConfiguration(settings: [
            "lock_ttl": "5s", "lock_wait": "2s", "forced_refresh_min_interval": forcedRefreshMinInterval,
        ])
        .service("my-api", tokenURL: provider.tokenURL, ["refresh_buffer": "10s", "request_timeout": "4s"]).json
        let configuration = try BatonConfiguration.parse(Array(json.utf8), environment: TestConfiguration.environment)
        let definitions = configuration.services.map { service in
            ServiceDefinition(
                name: service.name, settings: RefreshSettings(service, configuration: configuration),
                provider: OAuthTokenProvider(service: service),
                forcedRefreshMinInterval: service.forcedRefreshMinInterval)
        }
        let lines = self.lines
        let log = StructuredLog(replica: replica, minimum: .debug) { lines.append($0) }
        let coordinator = try Coordinator(
            client: client,
            options: .init(replica: replica, encryption: encryption, housekeepingInterval: housekeeping),
            services: definitions, log: log)
        coordinators.append((replica, coordinator, Task { await coordinator.run() }))
    }

    /// Stops the coordinator started as `replica` (a clean stop: its heartbeat goes).
    private func stopCoordinator(_ replica: String) async {
        guard let index = coordinators.firstIndex(where: { $0.replica == replica }) else { return }
        let stopped = coordinators.remove(at: index)
        stopped.coordinator.stop()
        await stopped.running.value
    }

    /// Makes `replica` look alive (its heartbeat, as `RefreshRequestQueue.beat()` writes it)
    /// without it taking requests.
    private func fakeLiveReplica(_ replica: String) async throws {
        try await client.send("SADD", "{oauth:refresh-requests}:processors", replica)
        try await client.set("{oauth:refresh-requests}:replica:\(replica)", to: "{}", expiry: .seconds(60))
    }

    /// The log lines of `event`.
    private func logged(_ event: String) -> [String] {
        lines.all.filter { $0.contains("\"event\":\"\(event)\"") }
    }

    /// Every entry of the request list and of `replicas`' processing lists.
    private func requestEntries(_ replicas: [String]) async throws -> [String] {
        var entries = (try await client.send("LRANGE", "oauth:refresh-requests", 0, -1).array ?? []).compactMap(
            \.string)
        for replica in replicas {
            entries +=
                (try await client.send("LRANGE", "{oauth:refresh-requests}:processing:\(replica)", 0, -1).array
                ?? []).compactMap(\.string)
        }
        return entries
    }

    private func waitForRecord(newerThan version: Int64 = 0, timeout: Duration = .seconds(15)) async throws
        -> TokenRecord
    {
        try await eventually(
            "a record newer than \(version)", timeout: timeout,
            diagnostics: { "the coordinator's log:\n" + self.lines.all.joined(separator: "\n") }
        ) {
            let record = try await store.record("my-api")
            return record.flatMap { $0.version > version && $0.status == .ok ? $0 : nil }
        }
    }

    /// Waits until `condition` holds, failing with the log when it does not within `timeout`.
    private func waitUntil(_ what: String, timeout: Duration = .seconds(15), _ condition: () async throws -> Bool)
        async throws
    {
        try await eventually(
            what, timeout: timeout,
            diagnostics: { "the coordinator's log:\n" + self.lines.all.joined(separator: "\n") },
            condition)
    }

    private func push(_ entry: String) async throws {
        try await client.send("LPUSH", "oauth:refresh-requests", entry)
    }

    private func requestListsAreEmpty() async throws -> Bool {
        let waiting = try await client.send("LLEN", "oauth:refresh-requests").integer ?? -1
        let taken = try await client.send("LLEN", "{oauth:refresh-requests}:processing:\(replica)").integer ?? -1
        return waiting == 0 && taken == 0
    }

    /// The cause of the flaky `testForcedRefreshIsCoalescedAndNeverLost`: a record read while a
    /// request was pending (a change notification, or the listener's first subscription at
    /// start-up) re-scheduled the service at its ordinary refresh time, minutes away, and the
    /// request waited silently until then. Here the forced-refresh gate is held (another replica
    /// refreshed a moment ago), so the request must wait; a change notification arrives meanwhile.
    func testAPendingRequestSurvivesAChangeNotification() async throws {
        try startCoordinator()
        let first = try await waitForRecord()
        let before = try provider.tokenRequests()
        try await client.set("oauth:{my-api}:forced", to: "other-replica", expiry: .milliseconds(2500))
        try await push(#"{"service":"my-api","version":\#(first.version)}"#)
        try await waitUntil("the request was taken") {
            try await client.send("LLEN", "{oauth:refresh-requests}:processing:\(replica)").integer == 1
        }
        // Notifications keep coming while the gate holds the request back (one of them lands
        // between two attempts, whatever the timing).
        for _ in 0..<10 {
            try await client.send("PUBLISH", "oauth:{my-api}:changed", first.version)
            try await Task.sleep(for: .milliseconds(200))
        }
        let forced = try await waitForRecord(newerThan: first.version, timeout: .seconds(10))
        XCTAssertEqual(forced.refreshedBy, replica)
        XCTAssertEqual(try provider.tokenRequests() - before, 1)
        try await waitUntil("the request was acknowledged") { try await requestListsAreEmpty() }
    }

    /// A request naming a version at or above the current one (a hostile or confused worker, or
    /// versions that restarted after Redis lost its data) is satisfied by one refresh.
    func testARequestFromTheFutureCausesOneProviderCall() async throws {
        try startCoordinator()
        let first = try await waitForRecord()
        let before = try provider.tokenRequests()
        try await push(#"{"service":"my-api","version":999999}"#)
        let forced = try await waitForRecord(newerThan: first.version)
        try await waitUntil("the request was acknowledged") { try await requestListsAreEmpty() }
        // Several forced_refresh_min_interval periods: no further call.
        try await Task.sleep(for: .seconds(4))
        XCTAssertEqual(try provider.tokenRequests() - before, 1, "one request, one provider call")
        let latest = try await store.record("my-api")
        XCTAssertEqual(latest?.version, forced.version)
    }

    /// Oversized and malformed entries are dropped with a log line on first sight and never
    /// handed on: the lists end empty and no provider call is made.
    func testPoisonRequestsAreDroppedOnFirstSight() async throws {
        try startCoordinator()
        _ = try await waitForRecord()
        let before = try provider.tokenRequests()
        let huge = #"{"service":"my-api","version":1,"pad":""# + String(repeating: "x", count: 5000) + #""}"#
        for entry in [huge, "not json", #"{"service":["my-api"]}"#, #"{"service":"my-api","version":"twelve"}"#] {
            try await push(entry)
        }
        try await waitUntil("every poison entry was dropped") { try await requestListsAreEmpty() }
        let dropped = lines.all.filter { $0.contains("\"event\":\"request_dropped\"") }
        XCTAssertEqual(dropped.count, 4, lines.all.joined(separator: "\n"))
        XCTAssertTrue(dropped.contains { $0.contains("oversized") }, dropped.joined(separator: "\n"))
        XCTAssertFalse(lines.all.joined().contains(String(repeating: "x", count: 100)), "an entry is never quoted")
        XCTAssertEqual(try provider.tokenRequests() - before, 0)
    }

    /// A replica that lacks the key of the service's secret (a rolling restart that has not
    /// reached it yet) takes a forced request without a version: it hands it back to the shared
    /// list, pinned to the version it resolved, while another live replica may have the key, at
    /// most once a second while it keeps taking it back, and without taking the forced-refresh
    /// gate (30 s here); the replica with the key then serves it at once with one provider call.
    /// Before, the request was answered unserved and the worker waited for a newer token in vain.
    func testARequestTakenByAReplicaWithoutTheKeyIsHandedBackAndServed() async throws {
        let lacking = "replica-without-key"
        let other = "replica-with-key"
        try startCoordinator(replica: other, forcedRefreshMinInterval: "30s")
        let first = try await waitForRecord()
        await stopCoordinator(other)
        // The other replica looks alive but takes nothing: the request has nowhere to go but back.
        // (Before the next start: a starting replica recovers the lists of replicas without a
        // heartbeat, and would unregister one whose heartbeat is not written yet.)
        try await fakeLiveReplica(other)
        try startCoordinator(
            replica: lacking, encryption: TestKeyring.keyring(TestKeyring.nextEntry), forcedRefreshMinInterval: "30s")
        let before = try provider.tokenRequests()
        try await push(#"{"service":"my-api"}"#)
        try await waitUntil("the request was handed back three times") { logged("request_handed_back").count >= 3 }
        XCTAssertLessThanOrEqual(
            logged("request_handed_back").count, 8, "about one hand-back a second:\n\(logged("request_handed_back"))")
        XCTAssertEqual(try provider.tokenRequests() - before, 0, "the replica without the key never refreshes")
        let reports = try await store.unknownKeyReports(["my-api"])
        XCTAssertEqual(reports["my-api"]?[lacking], "ktest-primary")
        let gate = try await client.get("oauth:{my-api}:forced")
        XCTAssertNil(gate, "the replica without the key never holds the forced-refresh gate")
        let entries = try await requestEntries([lacking])
        XCTAssertEqual(entries.count, 1, "\(entries)")
        XCTAssertTrue(
            entries.allSatisfy { $0.contains("\"version\":\(first.version)") && $0.contains("\"handed_back\":") },
            "handed back pinned to the version it was resolved to: \(entries)")

        try startCoordinator(replica: other, forcedRefreshMinInterval: "30s")
        let served = try await waitForRecord(newerThan: first.version, timeout: .seconds(15))
        XCTAssertEqual(served.refreshedBy, other)
        try await waitUntil("the request was acknowledged") { try await requestEntries([lacking, other]).isEmpty }
        XCTAssertEqual(try provider.tokenRequests() - before, 1, "one request, one provider call")
    }

    /// With no other live replica that may hold the key, the request is answered: it would
    /// otherwise go round for ever. A report of another kid (from before a rekey) does not count.
    func testARequestNoReplicaCanServeIsAnswered() async throws {
        let lacking = "replica-without-key"
        try startCoordinator(replica: lacking, encryption: TestKeyring.keyring(TestKeyring.nextEntry))
        try await waitUntil("the replica without the key says so") {
            try await store.unknownKeyReports(["my-api"])["my-api"]?[lacking] != nil
        }
        try await fakeLiveReplica("reported-the-same-kid")
        try await store.reportUnknownKey(service: "my-api", kid: "ktest-primary", replica: "reported-the-same-kid")
        try await push(#"{"service":"my-api","version":0}"#)
        try await waitUntil("the request was answered") { try await requestEntries([lacking]).isEmpty }
        XCTAssertEqual(logged("request_handed_back"), [])

        try await fakeLiveReplica("reported-another-kid")
        try await store.reportUnknownKey(service: "my-api", kid: "ktest-retired", replica: "reported-another-kid")
        try await push(#"{"service":"my-api","version":0}"#)
        try await waitUntil("the request was handed back") { logged("request_handed_back").count >= 1 }
    }

    /// A request that only replicas lacking the key keep taking (the other live replica never
    /// takes requests) is answered after ``Coordinator/maximumHandBacks`` hand-backs.
    func testARequestIsHandedBackAtMostTenTimes() async throws {
        let lacking = "replica-without-key"
        try await fakeLiveReplica("never-takes-requests")
        try startCoordinator(replica: lacking, encryption: TestKeyring.keyring(TestKeyring.nextEntry))
        try await push(#"{"service":"my-api","version":0}"#)
        try await waitUntil("the request was answered unserved", timeout: .seconds(60)) {
            try await requestEntries([lacking]).isEmpty && !logged("request_not_served").isEmpty
        }
        XCTAssertEqual(logged("request_handed_back").count, Coordinator.maximumHandBacks)
        XCTAssertEqual(logged("request_not_served").count, 1)
    }

    /// An entry in this live replica's processing list that it never received (the `BLMOVE`
    /// reply was lost with its connection) is put back and served without a restart.
    func testAStuckEntryOfALiveReplicaIsRecovered() async throws {
        try startCoordinator(housekeeping: .milliseconds(500))
        let first = try await waitForRecord()
        try await client.send(
            "LPUSH", "{oauth:refresh-requests}:processing:\(replica)",
            #"{"service":"my-api","version":\#(first.version)}"#)
        let forced = try await waitForRecord(newerThan: first.version, timeout: .seconds(15))
        XCTAssertGreaterThan(forced.version, first.version)
        try await waitUntil("the stuck request was acknowledged") { try await requestListsAreEmpty() }
        XCTAssertTrue(lines.all.contains { $0.contains("\"event\":\"requests_recovered\"") })
    }
}

/// Log lines collected from any thread.
final class LockedLines: @unchecked Sendable {
    private let lock = NSLock()
    private var lines: [String] = []
    func append(_ line: String) { lock.withLock { lines.append(line) } }
    var all: [String] { lock.withLock { lines } }
}
