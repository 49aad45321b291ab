import BatonLock
import BatonMetrics
import BatonRedis
import BatonTestSupport
import BatonTokens
import Foundation
import XCTest

@testable import BatonCoordinator

/// The coordinator's metrics against a real redis-server: the counters it moves for each kind of
/// attempt and request, and the Redis-state gauges any replica shows for every service.
final class CoordinatorMetricsTests: RedisTestCase {
    private var client: RedisClient!
    private var store: TokenStore!
    private var coordinators: [Coordinator] = []
    private var runs: [Task<Void, Never>] = []
    private let lines = LockedLines()

    override func setUp() async throws {
        let redis = try startRedis()
        client = try makeClient(redis, options: .init(poolSize: 16))
        store = TokenStore(client: client, prefix: "oauth", encryption: TestKeyring.encryption)
    }

    override func tearDown() async throws {
        for coordinator in coordinators { coordinator.stop() }
        for run in runs { await run.value }
    }

    /// Starts a replica serving `providers` (service name → provider).
    private func start(replica: String, _ providers: [String: ScriptedTokenProvider]) throws -> Coordinator {
        let settings = RefreshSettings(
            refreshBuffer: .seconds(60), lockTTL: .seconds(5), lockWait: .milliseconds(300),
            requestTimeout: .seconds(2))
        let definitions = providers.map { name, provider in
            ServiceDefinition(name: name, settings: settings, provider: provider)
        }
        let lines = self.lines
        let coordinator = try Coordinator(
            client: client,
            options: .init(
                replica: replica, encryption: TestKeyring.encryption, scheduleJitter: .milliseconds(20),
                retryBase: .milliseconds(100), retryCap: .milliseconds(400)),
            services: definitions, log: StructuredLog(replica: replica, minimum: .debug) { lines.append($0) },
            metrics: ReplicaMetrics(version: "test"))
        coordinators.append(coordinator)
        runs.append(Task { await coordinator.run() })
        return coordinator
    }

    private func waitUntil(_ what: String, _ condition: () async throws -> Bool) async throws {
        try await eventually(
            what, timeout: .seconds(30),
            diagnostics: { "the coordinators' log:\n" + self.lines.all.joined(separator: "\n") }, condition)
    }

    func testAttemptsAreCountedByResultAndProviderErrorsByClass() async throws {
        for service in ["good-api", "dead-api", "busy-api"] {
            try await store.seed(service: service, refreshToken: "rt-0", replica: "ops")
        }
        // busy-api: a holder that keeps the lock past the coordinator's 300 ms lock_wait; the
        // service has no record yet, so the attempt cannot fall back on a fresh one.
        let holder = try LockService(client: client, prefix: "oauth")
        let held = try await holder.lock("busy-api", options: .init(ttl: .seconds(60))).acquire(timeout: .seconds(5))
        let down = ProviderFailure.unavailable(code: "server_error_503", description: "down", retryAfter: nil)
        let dead = ProviderFailure.needsReauthorization(code: "invalid_grant", description: "revoked")
        let coordinator = try start(
            replica: "r1",
            [
                "good-api": ScriptedTokenProvider(lifetime: .seconds(600), script: [.failure(down)]),
                "dead-api": ScriptedTokenProvider(lifetime: .seconds(600), script: [.failure(dead)]),
                "busy-api": ScriptedTokenProvider(lifetime: .seconds(600)),
            ])
        let metrics = coordinator.metrics
        try await waitUntil("a refresh of good-api after one failure, an invalid_grant, a busy attempt") {
            metrics.refreshes.value("good-api", "refreshed") == 1
                && metrics.refreshes.value("dead-api", "invalid_grant") == 1
                && metrics.refreshes.value("busy-api", "busy") >= 1
        }
        XCTAssertEqual(metrics.refreshes.value("good-api", "failed"), 1)
        XCTAssertEqual(metrics.providerErrors.value("good-api", "server_error"), 1)
        XCTAssertEqual(metrics.providerErrors.value("dead-api", "invalid_grant"), 1)
        XCTAssertEqual(metrics.refreshes.value("dead-api", "refreshed"), 0)
        XCTAssertEqual(metrics.refreshes.value("busy-api", "refreshed"), 0)
        // Every attempt is timed; every lock wait too (at least the busy one's 300 ms).
        let attempts = RefreshResult.allCases.reduce(0.0) { sum, result in
            sum
                + ["good-api", "dead-api", "busy-api"].reduce(0.0) { $0 + metrics.refreshes.value($1, result.rawValue) }
        }
        XCTAssertEqual(Double(metrics.refreshDuration.count()), attempts)
        XCTAssertGreaterThanOrEqual(metrics.lockWait.count(), 3)
        let text = metrics.registry.exposition()
        XCTAssertTrue(text.contains("baton_refresh_total{service=\"good-api\",result=\"refreshed\"} 1\n"), text)
        XCTAssertTrue(text.contains("baton_refresh_total{service=\"busy-api\",result=\"already_fresh\"} 0\n"), text)
        XCTAssertTrue(text.contains("baton_lock_wait_seconds_bucket{le=\"0.5\"}"), text)

        // The holder lets go: the next attempt refreshes.
        _ = try await held.release()
        try await waitUntil("busy-api refreshed once the lock is free") {
            metrics.refreshes.value("busy-api", "refreshed") == 1
        }
    }

    func testForcedRequestsAreCountedByOutcome() async throws {
        try await store.seed(service: "my-api", refreshToken: "rt-0", replica: "ops")
        let coordinator = try start(replica: "r1", ["my-api": ScriptedTokenProvider(lifetime: .seconds(600))])
        let metrics = coordinator.metrics
        try await waitUntil("the first token") { try await store.record("my-api")?.status == .ok }
        let stored = try await store.record("my-api")
        let version = try XCTUnwrap(stored).version
        try await client.send("LPUSH", "oauth:refresh-requests", "not json")
        try await client.send("LPUSH", "oauth:refresh-requests", #"{"service":"my-api","version":\#(version)}"#)
        try await waitUntil("both requests handled") {
            metrics.forcedRequests.value("taken") == 2 && metrics.forcedRequests.value("answered") == 1
                && metrics.forcedRequests.value("dropped") == 1
        }
        XCTAssertEqual(metrics.refreshes.value("my-api", "refreshed"), 2, "the forced refresh is a refresh")
        XCTAssertEqual(metrics.forcedRequests.value("ack_failed"), 0)
    }

    func testASecondReplicaShowsTheFirstReplicasServicesFromRedis() async throws {
        try await store.seed(service: "first-api", refreshToken: "rt-0", replica: "ops")
        try await store.seed(service: "seeded-api", refreshToken: "rt-0", replica: "ops")
        let first = try start(replica: "r1", ["first-api": ScriptedTokenProvider(lifetime: .seconds(600))])
        try await waitUntil("first-api refreshed by r1") { try await store.record("first-api")?.status == .ok }
        // The second replica serves another service, never seeded; it refreshes nothing of the first's.
        let second = try start(replica: "r2", ["second-api": ScriptedTokenProvider(lifetime: .seconds(600))])
        let stored = try await store.record("first-api")
        let record = try XCTUnwrap(stored)

        let state = try await second.fleetState()
        let byName = Dictionary(uniqueKeysWithValues: state.services.map { ($0.name, $0) })
        XCTAssertEqual(byName["first-api"]?.status, .ok)
        XCTAssertEqual(byName["first-api"]?.expiresAt, record.expiresAt)
        XCTAssertEqual(byName["first-api"]?.version, record.version)
        XCTAssertEqual(byName["second-api"]?.status, .needsSeed)
        // seeded-api is served by nobody: a token but no record yet.
        XCTAssertEqual(byName["seeded-api"]?.status, .seeded)

        let text = second.metrics.registry.exposition(adding: state.families() + [FleetState.redisUp(true)])
        let expiry = ExpositionFormat.number(Double(record.expiresAt) / 1000)
        XCTAssertTrue(text.contains("baton_token_expiry_timestamp_seconds{service=\"first-api\"} \(expiry)\n"), text)
        XCTAssertTrue(text.contains("baton_token_version{service=\"first-api\"} \(record.version)\n"), text)
        XCTAssertTrue(text.contains("baton_service_status{service=\"first-api\",status=\"ok\"} 1\n"), text)
        XCTAssertTrue(text.contains("baton_service_status{service=\"second-api\",status=\"needs_seed\"} 1\n"), text)
        XCTAssertTrue(text.contains("baton_service_status{service=\"first-api\",status=\"needs_seed\"} 0\n"), text)
        // The counters are the replica's own: r2 refreshed nothing of first-api.
        XCTAssertEqual(second.metrics.refreshes.value("first-api", "refreshed"), 0)
        XCTAssertEqual(first.metrics.refreshes.value("first-api", "refreshed"), 1)
        XCTAssertFalse(text.contains("baton_refresh_total{service=\"first-api\""), text)
    }

    func testPendingRequestsAreTheSharedListLength() async throws {
        try await store.seed(service: "my-api", refreshToken: "rt-0", replica: "ops")
        // Not started: nothing consumes the list.
        let idle = try Coordinator(
            client: client, options: .init(replica: "r1", encryption: TestKeyring.encryption), services: [],
            log: StructuredLog(replica: "r1", minimum: .error) { _ in })
        for _ in 0..<3 { try await client.send("LPUSH", "oauth:refresh-requests", #"{"service":"my-api"}"#) }
        let state = try await idle.fleetState()
        XCTAssertEqual(state.pendingRequests, 3)
        XCTAssertEqual(state.services.map(\.name), ["my-api"])
    }

    /// The scrape-time read for 1,000 services with records: its cost, printed for the
    /// documentation, and bounded far under a scrape timeout.
    func testFleetStateOfAThousandServicesIsCheap() async throws {
        let now = try await store.now()
        var commands: [RedisCommand] = []
        for index in 0..<1000 {
            let service = "svc-\(index)"
            try await store.seed(service: service, refreshToken: "rt-\(index)", replica: "ops")
            let record = TokenRecord(
                service: service, accessToken: String(repeating: "a", count: 200), tokenType: "Bearer",
                expiresAt: now + 600_000, scope: "read write", version: Int64(index + 1), refreshedAt: now,
                refreshedBy: "bench")
            commands.append(RedisCommand("SET", try store.keys(service).token, try record.jsonBytes()))
        }
        _ = try await client.pipeline(commands)
        let coordinator = try Coordinator(
            client: client, options: .init(replica: "r1", encryption: TestKeyring.encryption), services: [],
            log: StructuredLog(replica: "r1", minimum: .error) { _ in })
        _ = try await coordinator.fleetState()  // warm: connection, script cache
        var timings: [Double] = []
        var renderings: [Double] = []
        var textBytes = 0
        for _ in 0..<5 {
            let started = ContinuousClock.now
            let state = try await coordinator.fleetState()
            let read = ContinuousClock.now
            let text = coordinator.metrics.registry.exposition(adding: state.families())
            timings.append((ContinuousClock.now - started).seconds * 1000)
            renderings.append((ContinuousClock.now - read).seconds * 1000)
            XCTAssertEqual(state.services.count, 1000)
            XCTAssertEqual(state.services.filter { $0.status == .ok }.count, 1000)
            textBytes = text.utf8.count
        }
        timings.sort()
        renderings.sort()
        print(
            "fleet state of 1000 services, read and rendered: median \(timings[2]) ms (rendering \(renderings[2]) ms), max \(timings[4]) ms, \(textBytes) bytes"
        )
        XCTAssertLessThan(timings[2], 2000, "a scrape-time read of 1,000 services must stay well under 2 s")
    }
}
