import BatonConfig
import BatonLock
import BatonRedis
import BatonSupport
import BatonTestSupport
import BatonTokens
import Foundation
import XCTest

/// Refresh tokens sealed at rest, against a real redis-server and the fake provider: where a
/// sealed token opens, what a replica without its key does, and `rekey` (``TokenStore/reseal``)
/// racing the refresh protocol.
final class SecretEncryptionTests: XCTestCase {
    private var redis: RedisServerProcess!
    private var provider: FakeOAuthProvider!
    private var client: RedisClient!
    private var locks: LockService!
    private var raw: RedisConnection!

    /// The keyring every store of these tests uses unless it says otherwise: the test primary key.
    private let original = TestKeyring.encryption
    /// The keyring after a rotation: the next key first, the original one after it.
    private let rotated = TestKeyring.keyring(TestKeyring.nextEntry + "," + TestKeyring.primaryEntry)

    override func setUpWithError() throws {
        redis = try RedisServerProcess.start()
        provider = try FakeOAuthProvider.start(lifetime: 30)
        client = try RedisClient(url: redis.url)
        locks = try LockService(client: client, prefix: "oauth")
        raw = try RedisConnection(url: redis.url)
    }

    override func tearDown() {
        raw?.close()
        locks?.shutDown()
        client?.shutDown()
        provider?.stop()
        redis?.stop()
    }

    private func store(_ encryption: SecretEncryption, prefix: String = "oauth") -> TokenStore {
        TokenStore(client: client, prefix: prefix, encryption: encryption)
    }

    private func rawSecret(_ service: String = "my-api", prefix: String = "oauth") throws -> String? {
        try raw.send(RedisCommand("GET", "\(prefix):{\(service)}:secret")).string
    }

    private func refresh(
        with store: TokenStore, _ request: TokenRefresher.Request = .forced(seenVersion: nil), replica: String = "r1"
    ) async throws -> TokenRecord {
        try await Self.refresh(with: store, locks: locks, tokenURL: provider.tokenURL, request, replica: replica)
    }

    /// A forced refresh of `my-api` by `replica` (static: runs in a task of its own too).
    private static func refresh(
        with store: TokenStore, locks: LockService, tokenURL: String, _ request: TokenRefresher.Request,
        replica: String
    ) async throws -> TokenRecord {
        let json = TestConfiguration(settings: ["lock_ttl": "30s", "lock_wait": "5s"])
            .service("my-api", tokenURL: tokenURL, ["refresh_buffer": "10s", "request_timeout": "5s"]).json
        let configuration = try BatonConfiguration.parse(Array(json.utf8), environment: TestConfiguration.environment)
        let service = configuration.services[0]
        return try await TokenRefresher(store: store, locks: locks, replica: replica).refresh(
            "my-api", settings: RefreshSettings(service, configuration: configuration),
            provider: OAuthTokenProvider(service: service), request: request)
    }

    /// The JSON of a stored envelope with `change` applied, written back.
    private func edit(_ service: String = "my-api", _ change: (inout [String: Any]) -> Void) throws {
        var object = try XCTUnwrap(
            JSONSerialization.jsonObject(with: Data(XCTUnwrap(rawSecret(service)).utf8)) as? [String: Any])
        change(&object)
        let data = try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])
        _ = try raw.send(RedisCommand("SET", "oauth:{\(service)}:secret", String(decoding: data, as: UTF8.self)))
    }

    private func assertUndecryptable(
        _ store: TokenStore, _ service: String = "my-api", _ what: String, line: UInt = #line
    ) async {
        do {
            let opened = try await store.secret(service)
            XCTFail("\(what): opened \(String(describing: opened?.fence))", line: line)
        } catch TokenStoreError.undecryptable(let named, let kid) {
            XCTAssertEqual(named, service, line: line)
            XCTAssertEqual(kid, "ktest-primary", line: line)
        } catch {
            XCTFail("\(what): \(error)", line: line)
        }
    }

    func testASealedTokenIsCiphertextAndOpensOnlyInItsPlace() async throws {
        let store = store(original)
        let fence = try await store.seed(service: "my-api", refreshToken: "rt-distinctive-1", replica: "ops")
        let sealed = try XCTUnwrap(rawSecret())
        XCTAssertFalse(sealed.contains("rt-distinctive-1"))
        let opened = try await store.secret("my-api")
        XCTAssertEqual(opened, SecretEnvelope(refreshToken: "rt-distinctive-1", fence: fence, kid: "ktest-primary"))
        // A fresh IV per write: the same token sealed twice gives two ciphertexts.
        try await store.seed(service: "my-api", refreshToken: "rt-distinctive-1", replica: "ops")
        let resealed = try XCTUnwrap(rawSecret())
        func field(_ text: String, _ name: String) throws -> String? {
            try (JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any])?[name] as? String
        }
        XCTAssertNotEqual(try field(sealed, "iv"), try field(resealed, "iv"))
        XCTAssertNotEqual(try field(sealed, "ct"), try field(resealed, "ct"))

        // Copied to another service's key: does not open there.
        _ = try raw.send(RedisCommand("SET", "oauth:{other-api}:secret", resealed))
        await assertUndecryptable(store, "other-api", "copied to another service")
        // Read under another prefix: does not open.
        _ = try raw.send(RedisCommand("SET", "staging:{my-api}:secret", resealed))
        await assertUndecryptable(self.store(original, prefix: "staging"), "my-api", "another prefix")
        // Replayed with another fence, identity or client: does not open.
        for (name, value) in [("fence", 999_999 as Any), ("id", String(repeating: "ab", count: 20)), ("client", "x")] {
            _ = try raw.send(RedisCommand("SET", "oauth:{my-api}:secret", resealed))
            try edit { $0[name] = value }
            await assertUndecryptable(store, "my-api", "another \(name)")
        }
        // A flipped ciphertext byte: does not open.
        _ = try raw.send(RedisCommand("SET", "oauth:{my-api}:secret", resealed))
        try edit { object in
            var bytes = Array(Data(base64Encoded: object["ct"] as! String)!)
            bytes[0] ^= 1
            object["ct"] = Data(bytes).base64EncodedString()
        }
        await assertUndecryptable(store, "my-api", "a changed ciphertext")
    }

    func testAReplicaWithoutTheKeyLeavesTheServiceAloneAndSaysSo() async throws {
        // Sealed under the next key by a replica that has it; read by one that does not.
        try await store(rotated).seed(service: "my-api", refreshToken: try provider.seedRefreshToken(), replica: "ops")
        let before = try XCTUnwrap(rawSecret())
        do {
            _ = try await refresh(with: store(original), replica: "old-replica")
            XCTFail("a secret under an unknown key must not be used")
        } catch RefreshError.unreadableSecret(.unknownKey(let service, let kid)) {
            XCTAssertEqual(service, "my-api")
            XCTAssertEqual(kid, "ktest-next")
        }
        XCTAssertEqual(try provider.tokenRequests(), 0, "the provider is never called")
        XCTAssertEqual(try rawSecret(), before, "the secret is never overwritten")
        let record = try await store(original).record("my-api")
        XCTAssertNil(record, "no failure record is written either")
        let reports = try await store(original).unknownKeyReports(["my-api"])
        XCTAssertEqual(reports["my-api"], ["old-replica": "ktest-next"])
        let events = try await store(original).events("my-api")
        XCTAssertEqual(events.first?.kind, .unknownKey)
        XCTAssertEqual(events.first?.fields["kid"], "ktest-next")
        // A replica with the key refreshes normally.
        let refreshed = try await refresh(with: store(rotated), replica: "new-replica")
        XCTAssertEqual(refreshed.status, .ok)
        XCTAssertEqual(try provider.invalidGrants(), 0)
    }

    /// A replica restarted with the key it lacked withdraws its report; reports for kids it still
    /// lacks, and other replicas' reports, stay.
    func testAReplicaWithdrawsOnlyReportsForKeysItNowHolds() async throws {
        let reporter = store(original)
        try await reporter.reportUnknownKey(service: "my-api", kid: "ktest-next", replica: "restarted")
        try await reporter.reportUnknownKey(service: "my-api", kid: "ktest-next", replica: "other")
        try await reporter.reportUnknownKey(service: "other-api", kid: "ktest-gone", replica: "restarted")
        try await store(rotated).withdrawUnknownKeyReports(
            ["my-api", "other-api", "never-reported"], replica: "restarted")
        let reports = try await reporter.unknownKeyReports(["my-api", "other-api"])
        XCTAssertEqual(reports["my-api"], ["other": "ktest-next"])
        XCTAssertEqual(reports["other-api"], ["restarted": "ktest-gone"])
    }

    func testPlainTokensStayReadableAndRekeyEncryptsThemWithoutChangingThem() async throws {
        let seeded = try provider.seedRefreshToken()
        let plainFence = try await store(.none).seed(service: "my-api", refreshToken: seeded, replica: "ops")
        XCTAssertTrue(try XCTUnwrap(rawSecret()).contains(seeded), "alg none keeps the token in the clear")
        let store = store(original)
        let plainRead = try await store.storedSecret("my-api")
        let plain = try XCTUnwrap(plainRead)
        XCTAssertNil(plain.stored.kid)
        XCTAssertFalse(store.sealer.isCurrent(plain.stored))
        let replaced = try await store.reseal(service: "my-api", stored: plain, replica: "ops")
        XCTAssertTrue(replaced)
        XCTAssertFalse(try XCTUnwrap(rawSecret()).contains(seeded), "rekey encrypted it")
        let openedRead = try await store.secret("my-api")
        let opened = try XCTUnwrap(openedRead)
        XCTAssertEqual(opened, SecretEnvelope(refreshToken: seeded, fence: plainFence, kid: "ktest-primary"))
        XCTAssertEqual(opened.identity, plain.stored.identity, "the identity survives the rekey")
        let events = try await store.events("my-api", count: 1)
        XCTAssertEqual(events.first?.kind, .rekeyed)
        XCTAssertEqual(events.first?.fields["previous_kid"], "none")
        let record = try await refresh(with: store)
        XCTAssertEqual(record.status, .ok)
        XCTAssertEqual(try provider.invalidGrants(), 0)
    }

    /// A rekey lands while a refresh that read the token under the old key is calling the provider:
    /// the refresh's rotated token is still stored (the identity did not change), and sealed under
    /// the refresher's primary key.
    func testARefreshInFlightDuringARekeyKeepsItsRotation() async throws {
        try await store(original).seed(service: "my-api", refreshToken: try provider.seedRefreshToken(), replica: "ops")
        try provider.setMode("normal", count: 1, delay: 1.5)
        let refresher = store(rotated)
        let locks: LockService = locks
        let tokenURL = provider.tokenURL
        let refreshing = Task {
            try await SecretEncryptionTests.refresh(
                with: refresher, locks: locks, tokenURL: tokenURL, .forced(seenVersion: nil), replica: "holder")
        }
        try await eventually("the provider call is in flight", timeout: .seconds(10)) {
            try self.provider.requestsInFlight() == 1
        }
        let storedRead = try await refresher.storedSecret("my-api")
        let stored = try XCTUnwrap(storedRead)
        XCTAssertEqual(stored.stored.kid, "ktest-primary")
        let replaced = try await refresher.reseal(service: "my-api", stored: stored, replica: "ops")
        XCTAssertTrue(replaced)
        let record = try await refreshing.value
        XCTAssertEqual(record.status, .ok)
        let secretRead = try await refresher.secret("my-api")
        let secret = try XCTUnwrap(secretRead)
        XCTAssertEqual(secret.kid, "ktest-next")
        XCTAssertEqual(secret.fence, record.version)
        XCTAssertNotEqual(secret.identity, stored.stored.identity, "the rotated token replaced the rekeyed one")
        let next = try await refresh(with: refresher)
        XCTAssertEqual(next.status, .ok)
        XCTAssertEqual(try provider.invalidGrants(), 0, "nothing was burnt")
    }

    /// A rotation lands between rekey's read and its write: the compare-and-set refuses, and the
    /// rotated token stays.
    func testARekeyNeverOverwritesARotationThatLandedAfterItsRead() async throws {
        try await store(original).seed(service: "my-api", refreshToken: try provider.seedRefreshToken(), replica: "ops")
        let staleRead = try await store(rotated).storedSecret("my-api")
        let stale = try XCTUnwrap(staleRead)
        let record = try await refresh(with: store(original))
        let rotatedRaw = try rawSecret()
        let replaced = try await store(rotated).reseal(service: "my-api", stored: stale, replica: "ops")
        XCTAssertFalse(replaced)
        XCTAssertEqual(try rawSecret(), rotatedRaw)
        let secret = try await store(rotated).secret("my-api")
        XCTAssertEqual(secret?.fence, record.version)
        XCTAssertEqual(try provider.invalidGrants(), 0)
    }

    func testTheSpoolHoldsCiphertextAndKeepsWhatItCannotOpen() throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("spool-\(UUID().uuidString)")
        addTeardownBlock { try? FileManager.default.removeItem(at: folder) }
        let entry = RotatedTokenSpool.Entry(
            store: "127.0.0.1:1/0/oauth", service: "my-api", fence: 7, usedSecret: "abc", refreshToken: "rt-spooled-9",
            client: "c1")
        let spool = RotatedTokenSpool(stateDirectory: folder.path, encryption: original)
        let claim = try spool.write(entry)
        let text = try String(contentsOfFile: claim.path, encoding: .utf8)
        XCTAssertFalse(text.contains("rt-spooled-9"), text)
        XCTAssertTrue(text.contains("sealed_refresh_token"), text)
        spool.remove(claim)  // as if Redis had it...
        _ = try spool.write(entry).path  // ...and then written again by a process that died
        do {  // the claims are dropped (their locks released) at the end of this scope
            let (entries, unreadable) = spool.claimAll()
            XCTAssertEqual(entries.map(\.entry), [entry])
            XCTAssertTrue(unreadable.isEmpty)
        }

        // A keyring without that key: reported, left in place, never deleted.
        let other = RotatedTokenSpool(
            stateDirectory: folder.path, encryption: TestKeyring.keyring(TestKeyring.nextEntry))
        let (none, problems) = other.claimAll()
        XCTAssertTrue(none.isEmpty)
        XCTAssertEqual(problems.count, 1)
        XCTAssertTrue(problems.first?.reason.contains("ktest-primary") == true, "\(problems)")
        XCTAssertTrue(FileManager.default.fileExists(atPath: claim.path))
    }
}
