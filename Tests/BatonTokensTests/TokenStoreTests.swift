import BatonLock
import BatonRedis
import BatonTestSupport
import Foundation
import XCTest

@testable import BatonTokens

final class TokenStoreTests: XCTestCase {
    private func start() throws -> (RedisServerProcess, TokenStore, RedisConnection) {
        let server = try RedisServerProcess.start()
        let client = try RedisClient(url: server.url)
        addTeardownBlock {
            client.shutDown()
            server.stop()
        }
        return (
            server, TokenStore(client: client, prefix: "oauth", encryption: TestKeyring.encryption),
            try RedisConnection(url: server.url)
        )
    }

    private func record(
        _ service: String = "my-api", token: String = "at", version: Int64 = 0, status: TokenRecord.Status = .ok
    ) -> TokenRecord {
        TokenRecord(
            service: service, accessToken: token, tokenType: "Bearer", expiresAt: 2_000_000_000_000, scope: "read",
            version: version, refreshedAt: 1_999_999_000_000, refreshedBy: "test", status: status)
    }

    /// `persist` with the test's defaults: service my-api; `used` is the refresh token the
    /// provider call used (none by default).
    private func persist(
        _ store: TokenStore, _ record: TokenRecord?, secret: String? = nil, fence: Int64, used: String? = nil,
        event: TokenEvent.Kind = .refreshed, replica: String = "r", owner: String = "nobody"
    ) async throws -> TokenStore.PersistOutcome {
        try await store.persist(
            record, service: "my-api", secret: secret, fence: fence, usedSecret: used.map(SecretEnvelope.identity(of:)),
            event: event,
            replica: replica, owner: owner)
    }

    func testKeySchemaIsTheDocumentedContract() throws {
        let keys = try TokenKeys(prefix: "oauth", service: "my-api")
        XCTAssertEqual(keys.token, "oauth:{my-api}:token")
        XCTAssertEqual(keys.secret, "oauth:{my-api}:secret")
        XCTAssertEqual(keys.lock.lock, "oauth:{my-api}:lock")
        XCTAssertEqual(keys.lock.fence, "oauth:{my-api}:fence")
        XCTAssertEqual(keys.events, "oauth:{my-api}:events")
        XCTAssertEqual(keys.services, "oauth:services")
        XCTAssertEqual(TokenKeys.refreshRequests(prefix: "oauth"), "oauth:refresh-requests")
        for bad in ["", "my api", "a{b}", "x*", String(repeating: "s", count: 129), "ünï"] {
            XCTAssertThrowsError(try TokenKeys(prefix: "oauth", service: bad), bad) { error in
                XCTAssertTrue(
                    String(describing: error).contains("service name")
                        || String(describing: error).contains("not allowed"), "\(error)")
            }
        }
        XCTAssertNoThrow(try TokenKeys(prefix: "oauth", service: String(repeating: "s", count: 128)))
    }

    func testRecordJSONHasExactlyTheContractFields() throws {
        let json = try JSONSerialization.jsonObject(with: Data(record(version: 12).jsonBytes())) as? [String: Any]
        XCTAssertEqual(
            Set(json?.keys.map { $0 } ?? []),
            [
                "service", "access_token", "token_type", "expires_at", "scope", "version",
                "refreshed_at", "refreshed_by", "status", "last_error",
            ])
        XCTAssertTrue(json?["last_error"] is NSNull, "last_error is null, not absent")
        XCTAssertEqual(json?["version"] as? Int, 12)
        XCTAssertEqual(json?["expires_at"] as? Int, 2_000_000_000_000)
        XCTAssertFalse(String(decoding: try record().jsonBytes(), as: UTF8.self).contains("refresh_token"))
        var failed = record()
        failed.status = .needsReauth
        failed.lastError = .init(code: "invalid_grant", description: "revoked", at: 5)
        let decoded = try TokenRecord.decode(failed.jsonBytes())
        XCTAssertEqual(decoded, failed)
        XCTAssertTrue(String(decoding: try failed.jsonBytes(), as: UTF8.self).contains("\"status\":\"needs_reauth\""))
    }

    func testRefreshRuleCapsTheBufferAtHalfTheLifetime() {
        let long = TokenRecord(
            service: "s", accessToken: "a", tokenType: "Bearer", expiresAt: 3_600_000, scope: nil,
            version: 1, refreshedAt: 0, refreshedBy: "t")
        XCTAssertEqual(long.refreshDueAt(refreshBuffer: .seconds(60)), 3_540_000)
        XCTAssertFalse(long.needsRefresh(at: 3_539_999, refreshBuffer: .seconds(60)))
        XCTAssertTrue(long.needsRefresh(at: 3_540_000, refreshBuffer: .seconds(60)))
        // A 10-second token with a 60-second buffer is refreshed at half its life, not constantly.
        let short = TokenRecord(
            service: "s", accessToken: "a", tokenType: "Bearer", expiresAt: 10_000, scope: nil,
            version: 1, refreshedAt: 0, refreshedBy: "t")
        XCTAssertEqual(short.refreshDueAt(refreshBuffer: .seconds(60)), 5_000)
        XCTAssertTrue(short.isExpired(at: 10_000))
        XCTAssertFalse(short.isExpired(at: 9_999))
    }

    func testSeedStoresAnEnvelopeWithAFreshFenceAndClearsNeedsReauth() async throws {
        let (_, store, redis) = try start()
        let first = try await store.seed(service: "my-api", refreshToken: "rt-1", replica: "ops")
        let secret = try await store.secret("my-api")
        XCTAssertEqual(secret, SecretEnvelope(refreshToken: "rt-1", fence: first, kid: "ktest-primary"))
        let raw = try XCTUnwrap(redis.send(RedisCommand("GET", "oauth:{my-api}:secret")).string)
        let envelope = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(raw.utf8)) as? [String: Any])
        XCTAssertEqual(envelope["v"] as? Int, 2)
        XCTAssertEqual(envelope["alg"] as? String, "A256GCM")
        XCTAssertEqual(envelope["kid"] as? String, "ktest-primary")
        XCTAssertEqual(envelope["fence"] as? Int64, first)
        XCTAssertFalse(raw.contains("rt-1"), "the token is stored encrypted")
        let services = try await store.services()
        XCTAssertEqual(services, ["my-api"])

        _ = try await persist(store, record(status: .needsReauth), fence: first, event: .needsReauth)
        let second = try await store.seed(service: "my-api", refreshToken: "rt-2", replica: "ops")
        XCTAssertGreaterThan(second, first)
        let healed = try await store.record("my-api")
        XCTAssertEqual(healed?.status, .ok)
        XCTAssertEqual(healed?.version, second)
        XCTAssertNil(healed?.lastError)
        XCTAssertEqual(healed?.expiresAt, 2_000_000_000_000, "numbers survive the script's JSON round trip")
        let kinds = try await store.events("my-api").compactMap(\.kind)
        XCTAssertEqual(kinds, [.seeded, .needsReauth, .seeded])
    }

    func testPersistRejectsAStaleWriterButNeverDropsANewerRotatedToken() async throws {
        let (_, store, redis) = try start()
        // Holder 7 wrote a successful record; holder 5 (paused past its lease) comes back.
        try redis.send(RedisCommand("SET", "oauth:{my-api}:fence", 7))
        let newer = try await persist(
            store, record(token: "at-7"), secret: "rt-7", fence: 7, used: "rt-1", replica: "r7", owner: "o7")
        XCTAssertEqual(newer, .written(version: 7, lockHeld: false, secret: .written))
        let stale = try await persist(
            store, record(token: "at-5"), secret: "rt-5", fence: 5, used: "rt-1", replica: "r5", owner: "o5")
        XCTAssertEqual(stale, .rejectedAsStale(newerVersion: 7, secret: .rejected))
        let kept = try await store.record("my-api")
        XCTAssertEqual(kept?.accessToken, "at-7")
        let keptSecret = try await store.secret("my-api")
        XCTAssertEqual(keptSecret?.refreshToken, "rt-7")
        let kinds = try await store.events("my-api").compactMap(\.kind)
        XCTAssertEqual(kinds.first, .staleWriteRejected)
        // The change channel saw the written version.
        XCTAssertEqual(try redis.send(RedisCommand("SISMEMBER", "oauth:services", "my-api")), .integer(1))
    }

    func testARotatedTokenOverridesANewerFailureRecord() async throws {
        let (_, store, redis) = try start()
        try await store.seed(service: "my-api", refreshToken: "rt-0", replica: "ops")
        try redis.send(RedisCommand("SET", "oauth:{my-api}:fence", 9))
        // Holder 9 used the old refresh token after holder 8 had rotated it: invalid_grant.
        _ = try await persist(
            store, record(token: "old", status: .needsReauth), fence: 9, event: .needsReauth, replica: "r9", owner: "o9"
        )
        // Holder 8 finally persists its rotation of the stored token: written, with a version above 9.
        let outcome = try await persist(
            store, record(token: "at-8"), secret: "rt-8", fence: 8, used: "rt-0", replica: "r8", owner: "o8")
        guard case .written(let version, _, .written) = outcome else { return XCTFail("\(outcome)") }
        XCTAssertEqual(version, 10, "versions only grow: a fresh fence was drawn")
        let healed = try await store.record("my-api")
        XCTAssertEqual(healed?.status, .ok)
        XCTAssertEqual(healed?.version, 10)
        let secret = try await store.secret("my-api")
        XCTAssertEqual(secret?.refreshToken, "rt-8")
        XCTAssertEqual(secret?.fence, 10)
    }

    func testPersistPublishesAndReportsWhetherTheLockWasHeld() async throws {
        let (server, store, redis) = try start()
        let subscription = try RedisSubscription(endpoint: RedisEndpoint(url: server.url))
        try subscription.subscribe(["oauth:{my-api}:changed"])
        try redis.send(RedisCommand("SET", "oauth:{my-api}:lock", "owner-1"))
        let outcome = try await persist(store, record(), fence: 3, owner: "owner-1")
        XCTAssertEqual(outcome, .written(version: 3, lockHeld: true, secret: .notOffered))
        guard case .message(let message) = try subscription.next(timeout: .seconds(2)) else {
            return XCTFail("no change notification")
        }
        XCTAssertEqual(message.text, "3")
        let event = try await store.events("my-api").first
        XCTAssertEqual(event?.fields["lock_held"], "1")
        XCTAssertEqual(event?.fields["replica"], "r")
        XCTAssertEqual(event?.fields["version"], "3")
    }

    /// Issue item 4: A (fence 5, paused) rotated the token stored at fence 4 into RT2; B (fence 6)
    /// rotated the same token into RT3 (a provider with a reuse grace period) and stored it; C
    /// (fence 7) wrote a failure record after a 503. A's older rotation must not replace RT3,
    /// and the failure record does not license it.
    func testAFailureRecordNeverLicensesAnOlderSecret() async throws {
        let (_, store, redis) = try start()
        try redis.send(RedisCommand("SET", "oauth:{my-api}:fence", 3))
        let s4 = try await store.seed(service: "my-api", refreshToken: "rt-1", replica: "ops")
        XCTAssertEqual(s4, 4)
        try redis.send(RedisCommand("SET", "oauth:{my-api}:fence", 7))
        let b = try await persist(store, record(token: "at-3"), secret: "rt-3", fence: 6, used: "rt-1")
        XCTAssertEqual(b, .written(version: 6, lockHeld: false, secret: .written))
        _ = try await persist(store, record(token: "at-3", status: .refreshingFailed), fence: 7, event: .failed)
        let stale = try await persist(store, record(token: "at-2"), secret: "rt-2", fence: 5, used: "rt-1")
        XCTAssertEqual(stale, .rejectedAsStale(newerVersion: 7, secret: .rejected))
        let secret = try await store.secret("my-api")
        XCTAssertEqual(secret?.refreshToken, "rt-3")
        let kept = try await store.record("my-api")
        XCTAssertEqual(kept?.accessToken, "at-3")
        XCTAssertEqual(kept?.version, 7)
    }

    /// Issue item 1(a): holder A (fence 5) called with RT0 while an operator seeded RT_S (fence 6);
    /// RT0 got invalid_grant, A retried with RT_S and got RT_S2. RT_S is burnt at the provider, so
    /// RT_S2 must replace it, with a version above the seed's.
    func testTheRotationOfASeedUsedInARetryReplacesThatSeed() async throws {
        let (_, store, redis) = try start()
        try redis.send(RedisCommand("SET", "oauth:{my-api}:fence", 3))
        let s4 = try await store.seed(service: "my-api", refreshToken: "rt-0", replica: "ops")
        _ = try await persist(store, record(token: "at-4"), fence: 4)
        try redis.send(RedisCommand("SET", "oauth:{my-api}:fence", 5))  // A holds fence 5
        let seeded = try await store.seed(service: "my-api", refreshToken: "rt-s", replica: "ops")
        XCTAssertEqual(seeded, 6)
        XCTAssertNotEqual(s4, seeded)
        let outcome = try await persist(store, record(token: "at-s2"), secret: "rt-s2", fence: 5, used: "rt-s")
        guard case .written(let version, _, .written) = outcome else { return XCTFail("\(outcome)") }
        XCTAssertGreaterThan(version, seeded)
        let secret = try await store.secret("my-api")
        XCTAssertEqual(secret?.refreshToken, "rt-s2")
        XCTAssertEqual(secret?.fence, version)
        let record = try await store.record("my-api")
        XCTAssertEqual(record?.accessToken, "at-s2")
        XCTAssertEqual(record?.version, version)
    }

    /// A spooled token replayed alone: stored when the secret it came from is still there,
    /// refused when a newer one is.
    func testASecretAloneIsStoredUnderTheSameRules() async throws {
        let (_, store, _) = try start()
        let first = try await store.seed(service: "my-api", refreshToken: "rt-1", replica: "ops")
        _ = try await persist(store, record(token: "at-1"), fence: first)
        let replayed = try await persist(store, nil, secret: "rt-2", fence: first, used: "rt-1", event: .spoolReplayed)
        guard case .written(_, _, .written) = replayed else { return XCTFail("\(replayed)") }
        let stored = try await store.secret("my-api")
        XCTAssertEqual(stored?.refreshToken, "rt-2")
        let untouched = try await store.record("my-api")
        XCTAssertEqual(untouched?.accessToken, "at-1", "the record is untouched")
        // Replaying the same file again (the process died before removing it): the same token, kept.
        let again = try await persist(store, nil, secret: "rt-2", fence: first, used: "rt-1", event: .spoolReplayed)
        guard case .written(_, _, .written) = again else { return XCTFail("\(again)") }
        let unchanged = try await store.secret("my-api")
        XCTAssertEqual(unchanged?.refreshToken, "rt-2")
        // Once that token was rotated further, an old file is refused.
        _ = try await persist(
            store, record(token: "at-3"), secret: "rt-3", fence: (unchanged?.fence ?? 0) + 1, used: "rt-2")
        let stale = try await persist(store, nil, secret: "rt-2", fence: first, used: "rt-1", event: .spoolReplayed)
        XCTAssertEqual(stale.secret, .rejected)
        let kept = try await store.secret("my-api")
        XCTAssertEqual(kept?.refreshToken, "rt-3")
    }

    /// Review finding: a spooled token stored after another holder marked the service
    /// `needs_reauth` (it used the token ours was rotated from) brings the service back.
    func testAStoredSpooledTokenHealsANeedsReauthRecord() async throws {
        let (_, store, redis) = try start()
        let seeded = try await store.seed(service: "my-api", refreshToken: "rt-0", replica: "ops")
        // Leases seeded+1 and seeded+2 were handed out.
        try redis.send(RedisCommand("SET", "oauth:{my-api}:fence", seeded + 2))
        _ = try await persist(store, record(token: "at-1"), fence: seeded + 1)
        _ = try await persist(
            store, record(token: "at-1", status: .needsReauth), fence: seeded + 2, used: "rt-0", event: .needsReauth)
        let replayed = try await persist(
            store, nil, secret: "rt-1", fence: seeded + 1, used: "rt-0", event: .spoolReplayed)
        guard case .written(let version, _, .written) = replayed else { return XCTFail("\(replayed)") }
        let healed = try await store.record("my-api")
        XCTAssertEqual(healed?.status, .ok)
        XCTAssertNil(healed?.lastError)
        XCTAssertEqual(healed?.version, version)
        XCTAssertGreaterThan(version, seeded + 2)
    }

    /// Review finding: identity, not fence numbers, names the secret a write was based on. After
    /// Redis lost its data the counter restarts; an old spooled token whose used fence happens to
    /// match the new seed's must not replace it.
    func testAnOldSpoolFileNeverReplacesAFreshSeedWithTheSameFence() async throws {
        let (_, store, _) = try start()
        let fresh = try await store.seed(service: "my-api", refreshToken: "rt-fresh", replica: "ops")
        XCTAssertEqual(fresh, 1)
        let replayed = try await persist(
            store, nil, secret: "rt-old", fence: 1, used: "rt-before-the-data-loss", event: .spoolReplayed)
        XCTAssertEqual(replayed.secret, .rejected)
        let kept = try await store.secret("my-api")
        XCTAssertEqual(kept?.refreshToken, "rt-fresh")
    }

    /// Review finding: a failure recorded after the secret was replaced (a seed while the failing
    /// call ran) is refused, so the fresh seed is not shadowed by `needs_reauth`.
    func testAFailureBasedOnAReplacedSecretIsNotRecorded() async throws {
        let (_, store, _) = try start()
        let first = try await store.seed(service: "my-api", refreshToken: "rt-0", replica: "ops")
        _ = try await persist(store, record(token: "at-1"), fence: first + 1)
        _ = try await store.seed(service: "my-api", refreshToken: "rt-seeded", replica: "ops")
        let failure = try await persist(
            store, record(token: "at-1", status: .needsReauth), fence: first + 5, used: "rt-0", event: .needsReauth)
        XCTAssertEqual(failure, .rejectedAsStale(newerVersion: first + 1, secret: .rejected))
        let record = try await store.record("my-api")
        XCTAssertEqual(record?.status, .ok)
    }

    /// Issue item 10: every script declares every key it touches, all in one slot. In a Redis
    /// Cluster whose node holding `{my-api}` does not hold the slot of `oauth:services`, a script
    /// that touches the registry fails ("non local key"); one that keeps to its slot runs.
    func testScriptsRunInOneClusterSlot() async throws {
        let home = try RedisServerProcess.start(arguments: ["--cluster-enabled", "yes"])
        let other = try RedisServerProcess.start(arguments: ["--cluster-enabled", "yes"])
        let client = try RedisClient(url: home.url)
        let otherClient = try RedisClient(url: other.url)
        addTeardownBlock {
            client.shutDown()
            otherClient.shutDown()
            home.stop()
            other.stop()
        }
        let slotReply = try await client.send("CLUSTER", "KEYSLOT", "oauth:{my-api}:token")
        let registryReply = try await client.send("CLUSTER", "KEYSLOT", "oauth:services")
        let slot = try XCTUnwrap(slotReply.integer)
        let registrySlot = try XCTUnwrap(registryReply.integer)
        XCTAssertNotEqual(slot, registrySlot)
        try await client.send("CLUSTER", "ADDSLOTS", slot)
        if slot > 0 { try await otherClient.send("CLUSTER", "ADDSLOTSRANGE", 0, slot - 1) }
        if slot < 16383 { try await otherClient.send("CLUSTER", "ADDSLOTSRANGE", slot + 1, 16383) }
        try await client.send("CLUSTER", "MEET", "127.0.0.1", other.port)
        let deadline = ContinuousClock.now + .seconds(20)
        while try await !(client.send("CLUSTER", "INFO").string ?? "").contains("cluster_state:ok") {
            guard ContinuousClock.now < deadline else { return XCTFail("the two-node cluster did not come up") }
            try await Task.sleep(for: .milliseconds(50))
        }
        // The scripts run on the node that holds the service's slot.
        let store = TokenStore(client: client, prefix: "oauth", encryption: TestKeyring.encryption)
        let fence: Int64
        do {
            fence =
                try await client.run(
                    TokenScripts.seed,
                    keys: [
                        try store.keys("my-api").secret, "oauth:{my-api}:fence",
                        "oauth:{my-api}:token", "oauth:{my-api}:events",
                    ],
                    arguments: [
                        #"{"alg":"none","fence":1,"refresh_token":"rt-1","v":1}"#, "my-api", "ops",
                        "oauth:{my-api}:changed", 1,
                    ]
                ).integer ?? -1
        } catch {
            return XCTFail("the seed script left its slot: \(error)")
        }
        let outcome = try await store.persist(
            record(token: "at-2"), service: "my-api", secret: "rt-2", fence: fence + 1,
            usedSecret: SecretEnvelope.identity(of: "rt-1"), event: .refreshed, replica: "r", owner: "o")
        guard case .written(_, _, .written) = outcome else { return XCTFail("\(outcome)") }
        let secret = try await store.secret("my-api")
        XCTAssertEqual(secret?.refreshToken, "rt-2")
        // The registry is kept outside the scripts (on the other node here).
        let added = try await otherClient.send("SADD", "oauth:services", "my-api")
        XCTAssertEqual(added.integer, 1)
    }

    func testEventStreamIsCapped() async throws {
        let (_, store, redis) = try start()
        for _ in 0..<1500 {
            try await store.appendEvent(.forced, service: "my-api", replica: "r")
        }
        let length = try XCTUnwrap(redis.send(RedisCommand("XLEN", "oauth:{my-api}:events")).integer)
        XCTAssertLessThan(length, 1200, "MAXLEN ~ 1000 trims (approximately)")
        XCTAssertGreaterThanOrEqual(length, 1000)
    }

    func testCorruptSecretIsReportedWithoutQuotingIt() async throws {
        let (_, store, redis) = try start()
        try redis.send(RedisCommand("SET", "oauth:{my-api}:secret", "plain-secret-value"))
        do {
            _ = try await store.secret("my-api")
            XCTFail("not an envelope")
        } catch let error as TokenStoreError {
            XCTAssertFalse(String(describing: error).contains("plain-secret-value"))
            XCTAssertTrue(String(describing: error).contains("baton seed my-api"))
        }
    }
}
