import BatonRedis
import BatonTestSupport
import BatonTokens
import Foundation
import XCTest

@testable import BatonCoordinator

/// The coordinator in process, with a scripted provider: scheduling, backoff, blocked states and
/// request coalescing, without HTTP or child processes.
final class CoordinatorTests: RedisTestCase {
    private var client: RedisClient!
    private var store: TokenStore!
    private var coordinator: Coordinator?
    private var running: Task<Void, Never>?
    private let lines = LockedLines()

    override func setUp() async throws {
        let redis = try startRedis()
        client = try makeClient(redis, options: .init(poolSize: 16))
        store = TokenStore(client: client, prefix: "oauth", encryption: TestKeyring.encryption)
        try await store.seed(service: "my-api", refreshToken: "rt-0", replica: "ops")
    }

    override func tearDown() async throws {
        coordinator?.stop()
        await running?.value
    }

    private func start(
        _ provider: ScriptedTokenProvider, refreshBuffer: Duration = .seconds(60),
        retryBase: Duration = .seconds(1), retryCap: Duration = .seconds(300)
    ) throws {
        let settings = RefreshSettings(
            refreshBuffer: refreshBuffer, lockTTL: .seconds(5), lockWait: .seconds(2), requestTimeout: .seconds(2))
        let definition = ServiceDefinition(
            name: "my-api", settings: settings, provider: provider, forcedRefreshMinInterval: .milliseconds(200))
        let lines = self.lines
        let coordinator = try Coordinator(
            client: client,
            options: .init(
                replica: "r1", encryption: TestKeyring.encryption, scheduleJitter: .milliseconds(50),
                retryBase: retryBase, retryCap: retryCap,
                blockedRecheck: .seconds(300)),
            services: [definition], log: StructuredLog(replica: "r1", minimum: .debug) { lines.append($0) })
        self.coordinator = coordinator
        running = Task { await coordinator.run() }
    }

    private func waitUntil(_ what: String, timeout: Duration = .seconds(20), _ condition: () async throws -> Bool)
        async throws
    {
        try await eventually(
            what, timeout: timeout,
            diagnostics: { "the coordinator's log:\n" + self.lines.all.joined(separator: "\n") },
            condition)
    }

    func testRefreshesAtTheRefreshTimeNeverEarlier() async throws {
        // 3-second tokens, refreshed when 1.5 s are left (the buffer is capped at half the lifetime).
        let provider = ScriptedTokenProvider(lifetime: .seconds(3))
        try start(provider, refreshBuffer: .seconds(60))
        try await waitUntil("four refreshes") { provider.callCount >= 4 }
        let gaps = zip(provider.callTimes.dropFirst(), provider.callTimes).map { $0.timeIntervalSince($1) }
        // Due 1.5 s after each call (minus the time the call took): never a hot loop.
        XCTAssertGreaterThanOrEqual(
            gaps.min() ?? 0, 1.0, "a token is refreshed at its refresh time, not before: \(gaps)")
        let record = try await store.record("my-api")
        XCTAssertEqual(record?.status, .ok)
        let secret = try await store.secret("my-api")
        XCTAssertEqual(secret?.refreshToken.hasPrefix("rt-"), true)
        XCTAssertNotEqual(secret?.refreshToken, "rt-0", "every rotation is stored")
    }

    func testRetriesWithBackoffAndRecovers() async throws {
        let down = ProviderFailure.unavailable(code: "server_error", description: "down", retryAfter: nil)
        let provider = ScriptedTokenProvider(
            lifetime: .seconds(600), script: [.failure(down), .failure(down), .failure(down)])
        try start(provider, retryBase: .milliseconds(50), retryCap: .milliseconds(400))
        try await waitUntil("a good record after three failures") { try await store.record("my-api")?.status == .ok }
        XCTAssertEqual(provider.callCount, 4)
        let retries = lines.all.filter { $0.contains("\"event\":\"refresh_failed\"") }
        XCTAssertEqual(retries.count, 3)
        XCTAssertTrue(retries.last?.contains("\"attempt\":3") == true, retries.joined(separator: "\n"))
        let events = try await store.events("my-api").compactMap(\.kind)
        XCTAssertEqual(events.filter { $0 == .retried }.count, 3)
    }

    func testInvalidGrantBlocksTheServiceUntilItIsSeeded() async throws {
        let dead = ProviderFailure.needsReauthorization(code: "invalid_grant", description: "revoked")
        let provider = ScriptedTokenProvider(lifetime: .seconds(600), script: [.failure(dead)])
        try start(provider)
        try await waitUntil("needs_reauth") { try await store.record("my-api")?.status == .needsReauth }
        // Blocked: no further provider call, however long (the blocked re-check is 5 minutes).
        try await Task.sleep(for: .seconds(1))
        XCTAssertEqual(provider.callCount, 1)
        XCTAssertTrue(lines.all.contains { $0.contains("\"event\":\"needs_reauth\"") })
        // A seed is published: the coordinator refreshes at once.
        try await store.seed(service: "my-api", refreshToken: "rt-new", replica: "ops")
        try await waitUntil("refreshed after the seed") {
            let record = try await store.record("my-api")
            return record?.status == .ok && record?.accessToken == "at-2"
        }
        XCTAssertEqual(provider.callCount, 2)
    }

    func testFiftyRequestsForOneVersionCauseOneProviderCall() async throws {
        let provider = ScriptedTokenProvider(lifetime: .seconds(600))
        try start(provider)
        try await waitUntil("the first token") { try await store.record("my-api")?.status == .ok }
        let first = try await store.record("my-api")
        let version = try XCTUnwrap(first).version
        let client = self.client!
        try await withThrowingTaskGroup(of: Void.self) { group in
            for _ in 0..<50 {
                group.addTask {
                    try await client.send(
                        "LPUSH", "oauth:refresh-requests", #"{"service":"my-api","version":\#(version)}"#)
                }
            }
            try await group.waitForAll()
        }
        try await waitUntil("every request answered") {
            let waiting = try await client.send("LLEN", "oauth:refresh-requests").integer
            let taken = try await client.send("LLEN", "{oauth:refresh-requests}:processing:r1").integer
            return waiting == 0 && taken == 0
        }
        let record = try await store.record("my-api")
        XCTAssertGreaterThan(record?.version ?? 0, version)
        XCTAssertEqual(provider.callCount, 2, "the first token, then one forced refresh for fifty requests")
        let statistics = await coordinator!.statistics
        XCTAssertEqual(statistics.requestsAnswered, 50)
    }
}
