import BatonConfig
import BatonLock
import BatonRedis
import BatonTestSupport
import BatonTokens
import Foundation
import XCTest

/// The fallback client secret against a real redis-server and the fake provider: tried once,
/// only after `invalid_client`, under a checked lease, and reported by an event.
final class ClientSecretFallbackTests: XCTestCase {
    private static let oldSecret = "old-rotated-out-secret"
    private var redis: RedisServerProcess!
    private var provider: FakeOAuthProvider!
    private var client: RedisClient!
    private var store: TokenStore!
    private var locks: LockService!

    override func setUpWithError() throws {
        redis = try RedisServerProcess.start()
        provider = try FakeOAuthProvider.start(lifetime: 30)
        client = try RedisClient(url: redis.url, options: .init(connection: .init(commandTimeout: .seconds(2))))
        store = TokenStore(client: client, prefix: "oauth", encryption: TestKeyring.encryption)
        locks = try LockService(client: client, prefix: "oauth")
    }

    override func tearDown() {
        locks?.shutDown()
        client?.shutDown()
        provider?.stop()
        redis?.stop()
    }

    /// A service whose primary secret is `primary` and fallback `fallback` (`nil`: no fallback key).
    private func configuration(primary: String, fallback: String?) throws -> BatonConfiguration {
        var extra: [String: Any] = ["request_timeout": "5s", "client_secret_env": "PRIMARY"]
        if fallback != nil { extra["client_secret_fallback_env"] = "FALLBACK" }
        let json = TestConfiguration(settings: ["lock_ttl": "30s", "lock_wait": "5s"])
            .service("my-api", tokenURL: provider.tokenURL, extra).json
        var environment = TestConfiguration.environment  // the test keyring
        environment["PRIMARY"] = primary
        environment["FALLBACK"] = fallback
        return try BatonConfiguration.parse(Array(json.utf8), environment: environment)
    }

    private func refresh(_ configuration: BatonConfiguration) async throws -> TokenRecord {
        try await refreshOnce(configuration, store: store, locks: locks)
    }

    private func seed() async throws -> String {
        let token = try provider.seedRefreshToken()
        try await store.seed(service: "my-api", refreshToken: token, replica: "ops")
        return token
    }

    private func fallbackEvents() async throws -> [TokenEvent] {
        try await store.events("my-api", count: 50).filter { $0.kind == .clientSecretFallbackUsed }
    }

    func testAnOldPrimaryFallsBackOnceAndSaysSo() async throws {
        let seeded = try await seed()
        let record = try await refresh(
            try configuration(primary: Self.oldSecret, fallback: FakeOAuthProvider.clientSecret))
        XCTAssertEqual(record.status, .ok)
        XCTAssertEqual(try provider.tokenRequests(), 2, "one invalid_client, one success")
        XCTAssertEqual(try provider.invalidGrants(), 0, "the refresh token was not spent by the first try")
        let rotated = try await store.secret("my-api")
        XCTAssertNotEqual(rotated?.refreshToken, seeded, "the rotated refresh token was stored")
        let events = try await fallbackEvents()
        XCTAssertEqual(events.count, 1)
        XCTAssertEqual(events.first?.fields["service"], "my-api")
        for event in try await store.events("my-api", count: 50) {
            for value in event.fields.values {
                XCTAssertFalse(value.contains(Self.oldSecret), "\(event.fields)")
                XCTAssertFalse(value.contains(FakeOAuthProvider.clientSecret), "\(event.fields)")
            }
        }
    }

    func testARightPrimaryNeverTriesTheFallback() async throws {
        _ = try await seed()
        let record = try await refresh(
            try configuration(primary: FakeOAuthProvider.clientSecret, fallback: Self.oldSecret))
        XCTAssertEqual(record.status, .ok)
        XCTAssertEqual(try provider.tokenRequests(), 1)
        let events = try await fallbackEvents()
        XCTAssertTrue(events.isEmpty)
    }

    func testOtherFailuresDoNotTryTheFallback() async throws {
        _ = try await seed()
        try provider.setMode("unauthorized_client", count: 1)
        do {
            _ = try await refresh(try configuration(primary: FakeOAuthProvider.clientSecret, fallback: "other"))
            XCTFail("unauthorized_client is not invalid_client")
        } catch RefreshError.provider(_, let failure) {
            XCTAssertEqual(failure.code, "unauthorized_client")
        }
        XCTAssertEqual(try provider.tokenRequests(), 1)
    }

    func testBothWrongIsTheUsualInvalidClientWithoutSecrets() async throws {
        _ = try await seed()
        let wrongFallback = "another-wrong-secret"
        do {
            _ = try await refresh(try configuration(primary: Self.oldSecret, fallback: wrongFallback))
            XCTFail("both secrets are wrong")
        } catch let error as RefreshError {
            guard case .provider(_, let failure) = error else { return XCTFail("\(error)") }
            XCTAssertEqual(failure.code, "invalid_client")
            for text in ["\(error)", String(reflecting: error), failure.detail, failure.description] {
                XCTAssertFalse(text.contains(Self.oldSecret), text)
                XCTAssertFalse(text.contains(wrongFallback), text)
            }
        }
        XCTAssertEqual(try provider.tokenRequests(), 2)
        XCTAssertEqual(try provider.invalidGrants(), 0)
        let fallbackUsed = try await fallbackEvents()
        XCTAssertTrue(fallbackUsed.isEmpty)
        let record = try await store.record("my-api")
        XCTAssertEqual(record?.lastError?.code, "invalid_client")
        for event in try await store.events("my-api", count: 50) {
            for value in event.fields.values {
                XCTAssertFalse(value.contains(Self.oldSecret), "\(event.fields)")
                XCTAssertFalse(value.contains(wrongFallback), "\(event.fields)")
            }
        }
    }

    /// Promise 1: the fallback try goes through the same lease check as every provider call. The
    /// lock is deleted while the first (slow) call runs, so the fallback must not be sent.
    func testTheFallbackIsNotSentWithoutALiveLease() async throws {
        _ = try await seed()
        try provider.setMode("invalid_client", count: 1, delay: 2)
        let configuration = try configuration(primary: Self.oldSecret, fallback: FakeOAuthProvider.clientSecret)
        let store: TokenStore = store
        let locks: LockService = locks
        let refreshing = Task { try await refreshOnce(configuration, store: store, locks: locks) }
        try await eventually("the first token request is in flight") { try self.provider.requestsInFlight() == 1 }
        let deleted = try await client.send(RedisCommand("DEL", arguments: ["oauth:{my-api}:lock"]))
        XCTAssertEqual(deleted.integer, 1, "the refresher held the lock")
        do {
            _ = try await refreshing.value
            XCTFail("the lease was lost before the fallback try")
        } catch RefreshError.leaseLost {
        }
        XCTAssertEqual(try provider.tokenRequests(), 1, "the fallback was never sent")
    }
}

/// One refresh of `my-api` with a fresh refresher (a free function, so a task can run it).
private func refreshOnce(_ configuration: BatonConfiguration, store: TokenStore, locks: LockService)
    async throws -> TokenRecord
{
    let service = configuration.services[0]
    return try await TokenRefresher(store: store, locks: locks, replica: "test")
        .refresh(
            "my-api", settings: RefreshSettings(service, configuration: configuration),
            provider: OAuthTokenProvider(service: service))
}
