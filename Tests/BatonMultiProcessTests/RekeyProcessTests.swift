import BatonRedis
import BatonSupport
import BatonTestSupport
import BatonTokens
import Foundation
import XCTest

/// Rotating the encryption key with no downtime, as README "Rotating an encryption key" says:
/// three `baton serve` replicas keep refreshing rotating tokens (a refresh in flight most of the
/// time) through rolling restarts that add the new key, make it the primary, `baton rekey`, and
/// a rolling restart without the old key; no replica ever meets a key it lacks, and not one
/// refresh token is burnt.
final class RekeyProcessTests: XCTestCase {
    private func keys(_ entries: String...) -> [String: String] {
        [BatonDefaults.Environment.encryptionKeys: entries.joined(separator: ",")]
    }

    /// The kid of every service's stored envelope.
    private func kids(_ fleet: ServeFleet) async throws -> [String: String] {
        var kids: [String: String] = [:]
        for service in fleet.services {
            kids[service] = try await fleet.store.storedSecret(service)?.stored.kid ?? "none"
        }
        return kids
    }

    func testKeysRotateWhileThreeReplicasRefresh() async throws {
        let redis = try RedisServerProcess.start()
        addTeardownBlock { redis.stop() }
        // The fleet stores rotated tokens with persist_replicas 1.
        let replica = try RedisServerProcess.startReplica(of: redis)
        addTeardownBlock { replica.stop() }
        try await eventually("the replica is online", timeout: .seconds(30), diagnostics: { replica.log }) {
            try redis.onlineReplicas() == 1
        }
        let old = keys(TestKeyring.primaryEntry)
        let both = keys(TestKeyring.nextEntry, TestKeyring.primaryEntry)
        let fleet = try await ServeFleet(redisURL: redis.url, environment: old)
        addTeardownBlock { fleet.stop() }
        let sealedUnderOld = try await kids(fleet)
        XCTAssertEqual(Set(sealedUnderOld.values), ["ktest-primary"], fleet.diagnostics())

        // 1. Every replica learns the new key (after the old one: nothing is sealed under it yet).
        try await fleet.restartReplicas(environment: keys(TestKeyring.primaryEntry, TestKeyring.nextEntry))
        // 2. The new key becomes the primary.
        try await fleet.restartReplicas(environment: both)
        // 3. rekey while they refresh.
        let rekey = try BatonExecutable.run(["rekey", "--config", fleet.config], environment: both)
        XCTAssertEqual(rekey.status, 0, rekey.output)
        XCTAssertTrue(rekey.output.contains("rekey to 'ktest-next'"), rekey.output)
        XCTAssertTrue(rekey.output.contains("failed 0"), rekey.output)
        let afterRekey = try await kids(fleet)
        XCTAssertEqual(Set(afterRekey.values), ["ktest-next"], "\(afterRekey)\n\(rekey.output)")
        let before = await fleet.versions()
        try await fleet.everyServiceRefreshes(2, since: before, "every service refreshes after the rekey")
        // 4. The old key goes.
        try await fleet.restartReplicas(environment: keys(TestKeyring.nextEntry))
        let rekeyAgain = try BatonExecutable.run(
            ["rekey", "--config", fleet.config], environment: keys(TestKeyring.nextEntry))
        XCTAssertEqual(rekeyAgain.status, 0, rekeyAgain.output)
        XCTAssertTrue(rekeyAgain.output.contains("rekeyed 0, current 6"), rekeyAgain.output)
        let unknown = fleet.logs().joined().components(separatedBy: "\n").filter {
            $0.contains("unknown_key") || $0.contains("unreadable_secret")
        }
        XCTAssertEqual(unknown, [], "no replica ever met a key it lacked")
        try await fleet.checkNoRotatedTokenWasLost()
    }
}
