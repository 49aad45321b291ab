import BatonLock
import BatonRedis
import BatonTestSupport
@testable import BatonTokens
import Foundation
import XCTest

final class TokenStoreTests: XCTestCase {
    private func start() throws -> (RedisServerProcess, TokenStore, RedisConnection) {
        let server = try RedisServerProcess.start()
        let client = try RedisClient(url: server.url)
        addTeardownBlock { client.shutDown(); server.stop() }
        return (server, TokenStore(client: client, prefix: "oauth"), try RedisConnection(url: server.url))
    }

    private func record(_ service: String = "my-api", token: String = "at", version: Int64 = 0, status: TokenRecord.Status = .ok) -> TokenRecord {
        TokenRecord(service: service, accessToken: token, tokenType: "Bearer", expiresAt: 2_000_000_000_000, scope: "read",
                    version: version, refreshedAt: 1_999_999_000_000, refreshedBy: "test", status: status)
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
                XCTAssertTrue(String(describing: error).contains("service name") || String(describing: error).contains("not allowed"), "\(error)")
            }
        }
        XCTAssertNoThrow(try TokenKeys(prefix: "oauth", service: String(repeating: "s", count: 128)))
    }

    func testRecordJSONHasExactlyTheContractFields() throws {
        let json = try JSONSerialization.jsonObject(with: Data(record(version: 12).jsonBytes())) as? [String: Any]
        XCTAssertEqual(Set(json?.keys.map { $0 } ?? []), ["service", "access_token", "token_type", "expires_at", "scope", "version",
                                                          "refreshed_at", "refreshed_by", "status", "last_error"])
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
        let long = TokenRecord(service: "s", accessToken: "a", tokenType: "Bearer", expiresAt: 3_600_000, scope: nil,
                               version: 1, refreshedAt: 0, refreshedBy: "t")
        XCTAssertEqual(long.refreshDueAt(refreshBuffer: .seconds(60)), 3_540_000)
        XCTAssertFalse(long.needsRefresh(at: 3_539_999, refreshBuffer: .seconds(60)))
        XCTAssertTrue(long.needsRefresh(at: 3_540_000, refreshBuffer: .seconds(60)))
        // A 10-second token with a 60-second buffer is refreshed at half its life, not constantly.
        let short = TokenRecord(service: "s", accessToken: "a", tokenType: "Bearer", expiresAt: 10_000, scope: nil,
                                version: 1, refreshedAt: 0, refreshedBy: "t")
        XCTAssertEqual(short.refreshDueAt(refreshBuffer: .seconds(60)), 5_000)
        XCTAssertTrue(short.isExpired(at: 10_000))
        XCTAssertFalse(short.isExpired(at: 9_999))
    }

    func testSeedStoresAnEnvelopeWithAFreshFenceAndClearsNeedsReauth() async throws {
        let (_, store, redis) = try start()
        let first = try await store.seed(service: "my-api", refreshToken: "rt-1", replica: "ops")
        let secret = try await store.secret("my-api")
        XCTAssertEqual(secret, SecretEnvelope(refreshToken: "rt-1", fence: first))
        let raw = try XCTUnwrap(redis.send(RedisCommand("GET", "oauth:{my-api}:secret")).string)
        let envelope = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(raw.utf8)) as? [String: Any])
        XCTAssertEqual(envelope["v"] as? Int, 1)
        XCTAssertEqual(envelope["alg"] as? String, "none")
        XCTAssertTrue(envelope["kid"] is NSNull)
        let services = try await store.services()
        XCTAssertEqual(services, ["my-api"])

        _ = try await store.persist(record(status: .needsReauth), secret: nil, fence: first, event: .needsReauth, replica: "r", owner: "nobody")
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
        let newer = try await store.persist(record(token: "at-7"), secret: "rt-7", fence: 7, event: .refreshed, replica: "r7", owner: "o7")
        XCTAssertEqual(newer, .written(version: 7, lockHeld: false))
        let stale = try await store.persist(record(token: "at-5"), secret: "rt-5", fence: 5, event: .refreshed, replica: "r5", owner: "o5")
        XCTAssertEqual(stale, .rejectedAsStale(newerVersion: 7, secretWritten: false))
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
        try redis.send(RedisCommand("SET", "oauth:{my-api}:fence", 9))
        // Holder 9 used the old refresh token after holder 8 had rotated it: invalid_grant.
        _ = try await store.persist(record(token: "old", status: .needsReauth), secret: nil, fence: 9, event: .needsReauth, replica: "r9", owner: "o9")
        // Holder 8 finally persists its rotation: the token is written, with a version above 9.
        let outcome = try await store.persist(record(token: "at-8"), secret: "rt-8", fence: 8, event: .refreshed, replica: "r8", owner: "o8")
        guard case .written(let version, _) = outcome else { return XCTFail("\(outcome)") }
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
        let outcome = try await store.persist(record(), secret: nil, fence: 3, event: .refreshed, replica: "r", owner: "owner-1")
        XCTAssertEqual(outcome, .written(version: 3, lockHeld: true))
        guard case .message(let message) = try subscription.next(timeout: .seconds(2)) else { return XCTFail("no change notification") }
        XCTAssertEqual(message.text, "3")
        let event = try await store.events("my-api").first
        XCTAssertEqual(event?.fields["lock_held"], "1")
        XCTAssertEqual(event?.fields["replica"], "r")
        XCTAssertEqual(event?.fields["version"], "3")
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
