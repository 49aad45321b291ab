import BatonLock
import BatonRedis
import BatonSupport
import BatonTestSupport
import Foundation
import XCTest

@testable import BatonTokens

/// Findings of the adversarial review of sealed secrets: hostile envelopes, versions after a
/// counter loss, and what the spool's binding covers.
final class SealingReviewTests: XCTestCase {
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

    private func record(version: Int64 = 0, status: TokenRecord.Status = .ok, token: String = "at") -> TokenRecord {
        TokenRecord(
            service: "my-api", accessToken: token, tokenType: "Bearer", expiresAt: 2_000_000_000_000, scope: nil,
            version: version, refreshedAt: 1_999_999_000_000, refreshedBy: "test", status: status)
    }

    /// `SecretEnvelope.decode` and `SecretSealer.open` on hostile JSON: only typed errors, never a trap.
    func testHostileEnvelopesOnlyThrow() throws {
        let id = String(repeating: "ab", count: 20)
        let fields =
            #""alg":"A256GCM","kid":"ktest-primary","iv":"AAAAAAAAAAAAAAAA","tag":"AAAAAAAAAAAAAAAAAAAAAA==","ct":"AAAA""#
        var inputs: [String] = [
            "{\"v\":2,\(fields),\"id\":\"\(id)\",\"fence\":1e300}",
            "{\"v\":2,\(fields),\"id\":\"\(id)\",\"fence\":-1e300}",
            "{\"v\":2,\(fields),\"id\":\"\(id)\",\"fence\":9223372036854775808}",
            "{\"v\":2,\(fields),\"id\":\"\(id)\",\"fence\":18446744073709551616}",
            "{\"v\":2,\(fields),\"id\":\"\(id)\",\"fence\":123456789012345678901234567890}",
            "{\"v\":2,\(fields),\"id\":\"\(id)\",\"fence\":\"12\"}",
            "{\"v\":2,\(fields),\"id\":\"\(id)\",\"fence\":true}",
            "{\"v\":2,\(fields),\"id\":\"\(id)\",\"fence\":1.5}",
            "{\"v\":1e300,\"alg\":\"none\",\"refresh_token\":\"x\"}",
            "{\"v\":-9223372036854775809,\"alg\":\"none\",\"refresh_token\":\"x\"}",
            "{\"v\":9223372036854775808,\"alg\":\"none\",\"refresh_token\":\"x\"}",
            "{\"v\":2.5,\"alg\":\"none\"}",
            "{\"v\":true,\"alg\":\"none\",\"refresh_token\":\"x\"}",
            "{\"v\":2,\(fields),\"id\":\"\(String(repeating: "\u{FF10}", count: 40))\",\"fence\":1}",
            "{\"v\":2,\(fields),\"id\":\"\(id)\",\"fence\":1,\"client\":[1,2]}",
            "{\"v\":2,\"alg\":\"A256GCM\",\"kid\":\"ktest-primary\",\"iv\":\"\",\"tag\":\"\",\"ct\":\"AA==\",\"id\":\"\(id)\"}",
            "{\"v\":2,\"alg\":\"A256GCM\",\"kid\":\"\",\"iv\":\"AA==\",\"tag\":\"AA==\",\"ct\":\"AA==\",\"id\":\"\(id)\"}",
            "{\"v\":3}", "{}", "[]", "1", "\"x\"", "null", "", "{\"v\":", "\u{0}",
            String(repeating: "[", count: 200_000), String(repeating: "{\"a\":", count: 200_000),
        ]
        inputs.append("{\"v\":1,\"alg\":\"none\",\"refresh_token\":\"\\ud800\"}")
        let sealer = SecretSealer(prefix: "oauth", encryption: TestKeyring.encryption)
        for input in inputs {
            do {
                _ = try sealer.open(Array(input.utf8), service: "my-api")
            } catch is TokenStoreError {
                // expected
            } catch {
                XCTFail("not a TokenStoreError for \(input.prefix(80)): \(error)")
            }
        }
        var invalidUTF8: [UInt8] = Array("{\"v\":1,\"alg\":\"none\",\"refresh_token\":\"".utf8)
        invalidUTF8 += [0xFF, 0xFE, 0x22, 0x7D]
        XCTAssertThrowsError(try sealer.open(invalidUTF8, service: "my-api"))
    }

    /// Brief: "a Redis failover with the counter lost". A lease handed out just before a failover
    /// (fence 50) wrote a failure record on the new master, whose counter restarted lower. The next
    /// holder's record-only write (a provider that does not rotate) draws its version with a bare
    /// `INCR` (no floor, unlike `allocateVersion`): the record's version goes from 50 down to 3,
    /// against the script's own doc ("Versions and secret fences only ever grow") and against every
    /// worker waiting for a version above 50 (forced refreshes: `record.version > seenVersion`).
    func testARecordOnlyWriteAfterACounterLossNeverLowersTheVersion() async throws {
        let (_, store, redis) = try start()
        let seeded = try await store.seed(service: "my-api", refreshToken: "rt-0", replica: "ops")
        XCTAssertEqual(seeded, 1)
        // The lease from before the failover (fence 50) records a transient failure.
        _ = try await store.persist(
            record(status: .refreshingFailed), service: "my-api", secret: nil, fence: 50,
            usedSecret: SecretEnvelope.identity(of: "rt-0"), event: .failed, replica: "old", owner: "o50")
        let failed = try await store.record("my-api")
        XCTAssertEqual(failed?.version, 50)
        // The counter on the new master is behind: the next lease is fence 2.
        try redis.send(RedisCommand("SET", "oauth:{my-api}:fence", 2))
        let outcome = try await store.persist(
            record(token: "at-new"), service: "my-api", secret: nil, fence: 2,
            usedSecret: SecretEnvelope.identity(of: "rt-0"), event: .refreshed, replica: "new", owner: "o2")
        let written = try await store.record("my-api")
        XCTAssertEqual(written?.accessToken, "at-new", "\(outcome)")
        XCTAssertGreaterThan(written?.version ?? 0, 50, "the version went backwards: \(outcome)")
    }

    /// The spool's additional data binds store, service and fence, not `used_secret` (nor `client`).
    /// Whoever can write `state_dir` and read the stored envelope's clear `id` turns an old spool file
    /// (a token long rotated away) into one that "was rotated from" the current token: the replay
    /// then replaces the current, valid refresh token with the dead one (promise 2).
    func testATamperedUsedSecretInASpoolFileNeverReplacesANewerToken() async throws {
        let (_, store, redis) = try start()
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("spool-\(UUID().uuidString)")
        addTeardownBlock { try? FileManager.default.removeItem(at: folder) }
        let spool = RotatedTokenSpool(stateDirectory: folder.path, encryption: TestKeyring.encryption)
        let seeded = try await store.seed(service: "my-api", refreshToken: "rt-0", replica: "ops")
        // An old spool file: rt-1 rotated from rt-0 under lease `seeded`; a copy is kept.
        let old = try spool.write(
            .init(
                store: store.location, service: "my-api", fence: seeded,
                usedSecret: SecretEnvelope.identity(of: "rt-0"), refreshToken: "rt-1"))
        let copy = try Data(contentsOf: URL(fileURLWithPath: old.path))
        _ = try await store.persist(
            record(token: "at-1"), service: "my-api", secret: "rt-1", fence: seeded,
            usedSecret: SecretEnvelope.identity(of: "rt-0"), event: .refreshed, replica: "r", owner: "o")
        spool.remove(old)
        // Later rotations: rt-1 -> rt-2 (fence 10).
        try redis.send(RedisCommand("SET", "oauth:{my-api}:fence", 10))
        _ = try await store.persist(
            record(token: "at-2"), service: "my-api", secret: "rt-2", fence: 10,
            usedSecret: SecretEnvelope.identity(of: "rt-1"), event: .refreshed, replica: "r", owner: "o")
        // The copy comes back with used_secret set to the stored envelope's clear `id`.
        let storedRead = try await store.storedSecret("my-api")
        let currentID = try XCTUnwrap(storedRead).stored.identity
        var object = try XCTUnwrap(JSONSerialization.jsonObject(with: copy) as? [String: Any])
        object["used_secret"] = currentID
        try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])
            .write(to: URL(fileURLWithPath: old.path))
        let (entries, problems) = spool.claimAll()
        XCTAssertEqual(problems.count, 1, "the tampered file is reported and kept: \(problems)")
        for (entry, _) in entries {
            _ = try await store.persist(
                nil, service: entry.service, secret: entry.refreshToken, client: entry.client, fence: entry.fence,
                usedSecret: entry.usedSecret, event: .spoolReplayed, replica: "r", owner: "")
        }
        XCTAssertTrue(entries.isEmpty, "a spool file whose used_secret was changed must not open")
        let kept = try await store.secret("my-api")
        XCTAssertEqual(kept?.refreshToken, "rt-2", "an old, rotated-away token replaced the current one")
    }

    /// A spool file written in the clear (by a version before encryption, or with `"encryption":
    /// "none"`) is still replayed when a keyring is configured: it may hold the only valid refresh
    /// token. (Whoever can write `state_dir` is Baton's own user, which docs/SECURITY.md lists as
    /// out of scope.)
    func testAPlainSpoolFileFromBeforeEncryptionIsStillReplayed() throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("spool-\(UUID().uuidString)")
        addTeardownBlock { try? FileManager.default.removeItem(at: folder) }
        try FileManager.default.createDirectory(
            at: folder.appendingPathComponent("spool"), withIntermediateDirectories: true)
        let plain: [String: Any] = [
            "store": "127.0.0.1:1/0/oauth", "service": "my-api", "fence": 7, "used_secret": "abc",
            "refresh_token": "rt-from-before",
        ]
        try JSONSerialization.data(withJSONObject: plain)
            .write(to: folder.appendingPathComponent("spool/my-api.7.x.json"))
        let spool = RotatedTokenSpool(stateDirectory: folder.path, encryption: TestKeyring.encryption)
        let (entries, problems) = spool.claimAll()
        XCTAssertEqual(entries.map(\.entry.refreshToken), ["rt-from-before"], "\(problems)")
    }
}
