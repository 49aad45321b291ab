import BatonConfig
import BatonLock
import BatonRedis
import BatonTestSupport
import BatonTokens
import Foundation
import XCTest

/// The refresh protocol against a real redis-server and the fake provider.
final class TokenRefresherTests: XCTestCase {
    private var redis: RedisServerProcess!
    private var provider: FakeOAuthProvider!
    private var client: RedisClient!
    private var store: TokenStore!
    private var locks: LockService!

    override func setUpWithError() throws {
        try start()
    }

    private func start(redisArguments: [String] = [], persistent: Bool = false) throws {
        redis = try RedisServerProcess.start(persistent: persistent, arguments: redisArguments)
        provider = try FakeOAuthProvider.start(lifetime: 30)
        client = try RedisClient(
            url: redis.url,
            options: .init(
                connection: .init(commandTimeout: .seconds(2), reconnect: .init(giveUpAfter: .milliseconds(500)))))
        store = TokenStore(client: client, prefix: "oauth", encryption: TestKeyring.encryption)
        locks = try LockService(client: client, prefix: "oauth")
    }

    override func tearDown() {
        stopAll()
    }

    private func stopAll() {
        locks?.shutDown()
        client?.shutDown()
        provider?.stop()
        redis?.stop()
    }

    private func configuration(grant: String = "refresh_token", lockTTL: String = "30s") throws -> BatonConfiguration {
        let json = TestConfiguration(settings: ["lock_ttl": lockTTL, "lock_wait": "5s"])
            .service(
                "my-api", tokenURL: provider.tokenURL,
                ["grant": grant, "refresh_buffer": "10s", "request_timeout": "5s"]
            ).json
        return try BatonConfiguration.parse(Array(json.utf8), environment: TestConfiguration.environment)
    }

    private func refresher(_ replica: String = "test") -> TokenRefresher {
        TokenRefresher(store: store, locks: locks, replica: replica)
    }

    private func refresh(
        _ request: TokenRefresher.Request = .fresh, replica: String = "test", grant: String = "refresh_token",
        lockTTL: String = "30s"
    ) async throws -> TokenRecord {
        try await caller(grant: grant, lockTTL: lockTTL).refresh(request, replica: replica)
    }

    /// A Sendable bundle for calling the refresh protocol from concurrent tasks.
    private func caller(grant: String = "refresh_token", lockTTL: String = "30s") throws -> RefreshCaller {
        RefreshCaller(store: store, locks: locks, configuration: try configuration(grant: grant, lockTTL: lockTTL))
    }

    private func seed() async throws -> String {
        let token = try provider.seedRefreshToken()
        try await store.seed(service: "my-api", refreshToken: token, replica: "ops")
        return token
    }

    func testRotationIsPersistedAndUsedNext() async throws {
        let seeded = try await seed()
        let first = try await refresh()
        XCTAssertEqual(first.status, .ok)
        XCTAssertEqual(first.refreshedBy, "test")
        XCTAssertGreaterThan(first.version, 1)
        let rotated = try await store.secret("my-api")
        XCTAssertNotEqual(rotated?.refreshToken, seeded, "the rotated refresh token replaced the seeded one")
        // Fresh: no provider call.
        let again = try await refresh()
        XCTAssertEqual(again, first)
        XCTAssertEqual(try provider.tokenRequests(), 1)
        // Forced: uses the rotated token, which the provider accepts.
        let forced = try await refresh(.forced(seenVersion: nil))
        XCTAssertGreaterThan(forced.version, first.version)
        XCTAssertEqual(try provider.tokenRequests(), 2)
        XCTAssertEqual(try provider.invalidGrants(), 0)
        let events = try await store.events("my-api").compactMap(\.kind)
        XCTAssertEqual(events, [.refreshed, .refreshed, .seeded])
    }

    func testTwentyConcurrentCallersOnAStaleRecordMakeOneProviderCall() async throws {
        _ = try await seed()
        let caller = try caller()
        let results = try await withThrowingTaskGroup(of: TokenRecord.self) { group in
            for index in 0..<20 {
                group.addTask { try await caller.refresh(.fresh, replica: "caller-\(index)") }
            }
            var records: [TokenRecord] = []
            for try await record in group { records.append(record) }
            return records
        }
        XCTAssertEqual(try provider.tokenRequests(), 1)
        XCTAssertEqual(try provider.invalidGrants(), 0)
        XCTAssertEqual(Set(results.map(\.accessToken)).count, 1, "everyone got the one new token")
    }

    func testInvalidGrantMovesToNeedsReauthAndLaterCallsDoNotHitTheProvider() async throws {
        _ = try await seed()
        let good = try await refresh()
        try provider.setMode("invalid_grant")
        do {
            _ = try await refresh(.forced(seenVersion: nil))
            XCTFail("invalid_grant must surface")
        } catch RefreshError.needsReauthorization(let service, let description) {
            XCTAssertEqual(service, "my-api")
            XCTAssertTrue(description.contains("invalid_grant"), description)
        }
        let record = try await store.record("my-api")
        XCTAssertEqual(record?.status, .needsReauth)
        XCTAssertEqual(record?.accessToken, good.accessToken, "the current token is still served until it expires")
        XCTAssertEqual(record?.lastError?.code, "invalid_grant")
        let callsSoFar = try provider.tokenRequests()
        for _ in 0..<3 {
            do {
                _ = try await refresh(.forced(seenVersion: nil))
                XCTFail("needs_reauth must stick")
            } catch RefreshError.needsReauthorization {}
        }
        XCTAssertEqual(try provider.tokenRequests(), callsSoFar, "no provider call while needs_reauth")
        // Re-seeding heals it.
        try provider.reset()
        _ = try await seed()
        let healed = try await refresh(.forced(seenVersion: nil))
        XCTAssertEqual(healed.status, .ok)
        XCTAssertNil(healed.lastError)
    }

    /// Waits until the provider has received call number `count` (its answer may still be slow
    /// in coming): the caller has done every Redis step before the call.
    private func waitForProviderCall(_ count: Int) async throws {
        let deadline = ContinuousClock.now + .seconds(20)
        while try provider.tokenRequests() < count {
            guard ContinuousClock.now < deadline else { return XCTFail("the provider never got call \(count)") }
            try await Task.sleep(for: .milliseconds(10))
        }
    }

    /// Issue item 1(a): an operator seeds while the holder calls with the old token; the old one
    /// gets invalid_grant, the retry uses the seed, and its rotation replaces the seed (before the
    /// fix it was rejected by the seed's newer fence and silently dropped, burning the seed).
    func testARetryWithANewSeedPersistsItsRotation() async throws {
        _ = try await seed()
        let first = try await refresh()
        let before = try provider.tokenRequests()
        try provider.setMode("invalid_grant", count: 1, delay: 1.5)
        let caller = try caller()
        let refreshing = Task { try await caller.refresh(.forced(seenVersion: nil), replica: "holder") }
        try await waitForProviderCall(before + 1)
        let seededFence = try await store.seed(
            service: "my-api", refreshToken: try provider.seedRefreshToken(), replica: "ops")
        let record = try await refreshing.value
        XCTAssertEqual(record.status, .ok)
        XCTAssertGreaterThan(record.version, seededFence, "the retry's write wins over the seed it used")
        XCTAssertGreaterThan(record.version, first.version)
        XCTAssertEqual(try provider.tokenRequests() - before, 2, "the forced invalid_grant, then one retry")
        let secret = try await store.secret("my-api")
        XCTAssertEqual(secret?.fence, record.version)
        // The stored token is the one the provider accepts now.
        let refused = try provider.invalidGrants()
        let next = try await refresh(.forced(seenVersion: nil))
        XCTAssertEqual(next.status, .ok)
        XCTAssertEqual(try provider.invalidGrants(), refused, "nothing was burnt")
    }

    /// Issue item 1(b): a holder whose lease is gone when it wants to retry (here the lock key was
    /// taken away during the slow first call, as when a pause outlasts the TTL) never calls the
    /// provider again.
    func testNoRetryWithoutALiveLease() async throws {
        _ = try await seed()
        _ = try await refresh()
        let before = try provider.tokenRequests()
        try provider.setMode("invalid_grant", count: 1, delay: 1.5)
        let caller = try caller()
        let refreshing = Task { try await caller.refresh(.forced(seenVersion: nil), replica: "holder") }
        try await waitForProviderCall(before + 1)
        let seeded = try provider.seedRefreshToken()
        try await store.seed(service: "my-api", refreshToken: seeded, replica: "ops")
        try await client.send("DEL", "oauth:{my-api}:lock")
        do {
            _ = try await refreshing.value
            XCTFail("the lease was gone: no retry")
        } catch RefreshError.leaseLost(let service) {
            XCTAssertEqual(service, "my-api")
        }
        XCTAssertEqual(try provider.tokenRequests() - before, 1, "no provider call without the lease")
        let secret = try await store.secret("my-api")
        XCTAssertEqual(secret?.refreshToken, seeded, "the seed is untouched and still valid")
        try provider.reset()
        let healed = try await refresh(.forced(seenVersion: nil))
        XCTAssertEqual(healed.status, .ok)
    }

    /// Issue item 2: `OOM command not allowed` (maxmemory) while persisting a rotated token is
    /// retried until Redis takes it, never thrown away.
    func testARotatedTokenSurvivesAnOOMWindow() async throws {
        _ = try await seed()
        _ = try await refresh()
        let errors = LockedStrings()
        var caller = try caller()
        caller.onPersistRetry = { _, error in errors.append(String(describing: error)) }
        let before = try provider.tokenRequests()
        try provider.setMode("normal", count: 1, delay: 1)
        let refreshing = Task { [caller] in try await caller.refresh(.forced(seenVersion: nil), replica: "holder") }
        try await waitForProviderCall(before + 1)
        try await client.send("CONFIG", "SET", "maxmemory-policy", "noeviction")
        try await client.send("CONFIG", "SET", "maxmemory", 1)
        let deadline = ContinuousClock.now + .seconds(10)
        while errors.all.isEmpty && ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(20)) }
        try await client.send("CONFIG", "SET", "maxmemory", 0)
        XCTAssertTrue(errors.all.contains { $0.contains("OOM") }, "persist attempts were retried: \(errors.all)")
        let record = try await refreshing.value
        XCTAssertEqual(record.status, .ok)
        try provider.reset()
        let next = try await refresh(.forced(seenVersion: nil))
        XCTAssertEqual(next.status, .ok)
        XCTAssertEqual(try provider.invalidGrants(), 0, "the rotated token was stored")
    }

    /// Issue item 9: a 2xx answer that is not a usable token response but carries the rotated
    /// refresh token: the token is stored (the old one is burnt), the failure recorded without
    /// quoting the body, and the next refresh works.
    func testARefreshTokenInAnUnusableAnswerIsKept() async throws {
        _ = try await seed()
        _ = try await refresh()
        try provider.setMode("access_token_number", count: 1)
        do {
            _ = try await refresh(.forced(seenVersion: nil))
            XCTFail("an unusable answer is a failure")
        } catch RefreshError.provider(_, let failure) {
            XCTAssertEqual(failure.code, "protocol_error")
        }
        let failed = try await store.record("my-api")
        XCTAssertEqual(failed?.status, .refreshingFailed)
        let events = try await store.events("my-api").compactMap(\.kind)
        XCTAssertTrue(events.contains(.recovered), "\(events)")
        let next = try await refresh(.forced(seenVersion: nil))
        XCTAssertEqual(next.status, .ok)
        XCTAssertEqual(try provider.invalidGrants(), 0, "the recovered token was the live one")
    }

    /// Issue item 13: a refresh token seeded for one client is never used under another
    /// configuration (a different token_url, client_id or grant would burn it with invalid_grant).
    func testATokenIssuedToAnotherClientIsLeftAlone() async throws {
        let token = try provider.seedRefreshToken()
        let configuration = try configuration()
        let service = configuration.services[0]
        try await store.seed(service: "my-api", refreshToken: token, replica: "ops", client: "0123456789abcdef")
        XCTAssertNotEqual(service.clientFingerprint, "0123456789abcdef")
        do {
            _ = try await refresher().refresh(
                "my-api", settings: RefreshSettings(service, configuration: configuration),
                provider: OAuthTokenProvider(service: service))
            XCTFail("another client's token must not be used")
        } catch RefreshError.configMismatch(let name) {
            XCTAssertEqual(name, "my-api")
        }
        XCTAssertEqual(try provider.tokenRequests(), 0)
        let secret = try await store.secret("my-api")
        XCTAssertEqual(secret?.refreshToken, token)
        // Seeded for this client: used, and the rotation keeps the fingerprint.
        try await store.seed(service: "my-api", refreshToken: token, replica: "ops", client: service.clientFingerprint)
        let record = try await refresh()
        XCTAssertEqual(record.status, .ok)
        let rotated = try await store.secret("my-api")
        XCTAssertEqual(rotated?.client, service.clientFingerprint)
    }

    func testTransientFailureKeepsTheTokenAndRecordsTheError() async throws {
        _ = try await seed()
        let good = try await refresh()
        try provider.setMode("unavailable", count: 1, retryAfter: "9")
        do {
            _ = try await refresh(.forced(seenVersion: nil))
            XCTFail()
        } catch RefreshError.provider(_, let failure) {
            guard case .unavailable(_, _, let retryAfter) = failure else { return XCTFail("\(failure)") }
            XCTAssertEqual(retryAfter, .seconds(9))
        }
        let record = try await store.record("my-api")
        XCTAssertEqual(record?.status, .refreshingFailed)
        XCTAssertEqual(record?.accessToken, good.accessToken)
        XCTAssertEqual(record?.lastError?.code, "temporarily_unavailable")
        // The refresh token was not consumed: the next try succeeds.
        let next = try await refresh(.forced(seenVersion: nil))
        XCTAssertEqual(next.status, .ok)
    }

    func testNeedsSeedAndClientCredentials() async throws {
        do {
            _ = try await refresh()
            XCTFail()
        } catch RefreshError.needsSeed(let service) {
            XCTAssertEqual(service, "my-api")
        }
        XCTAssertEqual(try provider.tokenRequests(), 0)
        let events = try await store.events("my-api").compactMap(\.kind)
        XCTAssertEqual(events, [.needsSeed])
        let machine = try await refresh(grant: "client_credentials")
        XCTAssertEqual(machine.status, .ok)
        let secret = try await store.secret("my-api")
        XCTAssertNil(secret, "client_credentials stores no refresh token")
    }

    func testBusyLockReturnsTheValidRecordAndNeverCallsTheProvider() async throws {
        _ = try await seed()
        let current = try await refresh()
        let holder = try await locks.lock("my-api").acquire(timeout: .zero)
        let configuration = try configuration()
        var settings = RefreshSettings(configuration.services[0], configuration: configuration)
        settings.lockWait = .milliseconds(300)
        let provider = OAuthTokenProvider(service: configuration.services[0])
        let served = try await refresher().refresh(
            "my-api", settings: settings, provider: provider, request: .forced(seenVersion: nil))
        XCTAssertEqual(served, current, "still valid: served while someone else holds the lock")
        // Make the stored token expired: now the caller gets `busy`, still without a provider call.
        var expired = current
        expired.expiresAt = 1
        _ = try await store.persist(
            expired, service: "my-api", secret: nil, fence: current.version, usedSecret: nil, event: .refreshed,
            replica: "t", owner: "x")
        do {
            _ = try await refresher().refresh(
                "my-api", settings: settings, provider: provider, request: .forced(seenVersion: nil))
            XCTFail()
        } catch RefreshError.busy(let service, _) {
            XCTAssertEqual(service, "my-api")
        }
        XCTAssertEqual(try self.provider.tokenRequests(), 1)
        try await holder.release()
    }

    /// A holder whose lease was taken from it mid-call (as after a long pause) cannot overwrite
    /// the newer record its successor wrote.
    func testAStaleHolderCannotOverwriteANewerRecord() async throws {
        _ = try await seed()
        // The first call is slow and does not rotate, so the successor's call also succeeds.
        try provider.setMode("no_refresh_token", count: 1, delay: 1.5)
        let caller = try caller()
        let stale = Task { try await caller.refresh(.forced(seenVersion: nil), replica: "stale") }
        try await Task.sleep(for: .milliseconds(400))
        let forced = try await locks.lock("my-api").forceRelease()
        XCTAssertNotNil(forced)
        let successor = try await refresh(.forced(seenVersion: nil), replica: "successor")
        let staleResult = try await stale.value
        XCTAssertEqual(staleResult, successor, "the stale holder returns the newer record instead of its own")
        let stored = try await store.record("my-api")
        XCTAssertEqual(stored?.refreshedBy, "successor")
        let events = try await store.events("my-api").compactMap(\.kind)
        XCTAssertEqual(events.first, .staleWriteRejected)
    }

    /// The rotation race: a slow holder's call rotates the token; meanwhile a successor uses the
    /// old one and gets invalid_grant. The rotated token must survive and heal the record.
    func testARotationRaceNeverLosesTheRotatedToken() async throws {
        _ = try await seed()
        try provider.setMode("normal", count: 1, delay: 1.5)
        let caller = try caller()
        let slow = Task { try await caller.refresh(.forced(seenVersion: nil), replica: "slow") }
        try await Task.sleep(for: .milliseconds(400))
        _ = try await locks.lock("my-api").forceRelease()
        do {
            _ = try await refresh(.forced(seenVersion: nil), replica: "successor")
            XCTFail("the successor used a token the slow holder had already rotated")
        } catch RefreshError.needsReauthorization {}
        let healed = try await slow.value
        XCTAssertEqual(healed.status, .ok)
        XCTAssertEqual(healed.refreshedBy, "slow")
        let stored = try await store.record("my-api")
        XCTAssertEqual(stored?.status, .ok)
        XCTAssertEqual(stored?.version, healed.version)
        // The credential is alive: the rotated token works.
        let next = try await refresh(.forced(seenVersion: nil))
        XCTAssertEqual(next.status, .ok)
    }

    func testRedisKilledBetweenTheProviderAnswerAndTheWrite() async throws {
        stopAll()
        try start(redisArguments: ["--appendonly", "yes", "--appendfsync", "always"], persistent: true)
        let seeded = try await seed()
        try provider.setMode("normal", count: 1, delay: 1.0)
        let caller = try caller(lockTTL: "6s")
        let inFlight = Task { try await caller.refresh(.forced(seenVersion: nil), replica: "test") }
        try await Task.sleep(for: .milliseconds(400))
        redis.kill9()
        // The provider answers (rotating the token) while Redis is down; keep it down a while.
        try await Task.sleep(for: .milliseconds(2500))
        try redis.startAgain()
        let record = try await inFlight.value
        XCTAssertEqual(record.status, .ok)
        let secret = try await store.secret("my-api")
        XCTAssertNotNil(secret)
        XCTAssertNotEqual(secret?.refreshToken, seeded, "the rotated refresh token was stored after Redis came back")
        let next = try await self.refresh(.forced(seenVersion: record.version))
        XCTAssertEqual(next.status, .ok)
        XCTAssertEqual(try provider.invalidGrants(), 0)
    }
}

private struct RefreshCaller: Sendable {
    let store: TokenStore
    let locks: LockService
    let configuration: BatonConfiguration
    var onPersistRetry: @Sendable (String, any Error) -> Void = { _, _ in }

    func refresh(_ request: TokenRefresher.Request, replica: String) async throws -> TokenRecord {
        let service = configuration.services[0]
        return try await TokenRefresher(store: store, locks: locks, replica: replica, onPersistRetry: onPersistRetry)
            .refresh(
                "my-api", settings: RefreshSettings(service, configuration: configuration),
                provider: OAuthTokenProvider(service: service), request: request)
    }
}

/// Strings collected from any thread.
private final class LockedStrings: @unchecked Sendable {
    private let lock = NSLock()
    private var strings: [String] = []
    func append(_ string: String) { lock.withLock { strings.append(string) } }
    var all: [String] { lock.withLock { strings } }
}
