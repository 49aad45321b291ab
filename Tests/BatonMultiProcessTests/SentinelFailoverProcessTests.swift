import BatonRedis
import BatonSupport
import BatonTestSupport
import Foundation
import XCTest

/// Three `baton serve` replicas on a `redis-sentinel://` URL refreshing rotating tokens while the
/// master is killed (-9) with a refresh in flight: Sentinel promotes a replica, Baton follows, and
/// with `persist_replicas: 1` no rotated refresh token is lost (zero `invalid_grant`, and each
/// service's stored refresh token is the one the provider still honours).
final class SentinelFailoverProcessTests: XCTestCase {
    func testKillingTheMasterMidRefreshLosesNoRotatedToken() async throws {
        let group = try await RedisSentinelGroup.start(
            dataArguments: ["--min-replicas-to-write", "1", "--min-replicas-max-lag", "10"])
        let fleet = try await ServeFleet(redisURL: group.url)
        addTeardownBlock {
            fleet.stop()
            group.stop()
        }
        _ = try await fleet.serviceWithARefreshInFlight()
        let atKill = await fleet.versions()
        let killedMaster = try group.killMaster()
        let killed = ContinuousClock.now

        // The first refresh stored after the kill, whichever service it is.
        let firstRefresh = try await eventually(
            "a refresh succeeds after the kill", timeout: .seconds(90), diagnostics: fleet.diagnostics
        ) { () async -> Duration? in
            let now = await fleet.versions()
            return now.contains { service, version in version > (atKill[service] ?? 0) }
                ? ContinuousClock.now - killed : nil
        }
        _ = try await group.waitForFailover(awayFrom: killedMaster)
        // Every service goes on refreshing: at least two more rotations each, each one
        // presenting the refresh token the previous one stored.
        try await fleet.everyServiceRefreshes(2, since: atKill, "every service refreshes twice more after the failover")
        // The request consumers' BLMOVE followed the master too: forced requests pushed now drain.
        let requests = "oauth:refresh-requests"
        let since = await fleet.versions()
        for service in fleet.services {
            let request = try JSONSerialization.data(
                withJSONObject: ["service": service, "version": since[service] ?? 0], options: [.sortedKeys])
            try await fleet.client.send("LPUSH", requests, Array(request))
        }
        try await fleet.everyServiceRefreshes(1, since: since, "every forced request is served")
        try await eventually("the request list and the processing lists drain", diagnostics: fleet.diagnostics) {
            var lengths = [try await fleet.client.send("LLEN", requests).integer ?? -1]
            for id in ["replica-1", "replica-2", "replica-3"] {
                lengths.append(try await fleet.client.send("LLEN", "{\(requests)}:processing:\(id)").integer ?? -1)
            }
            return lengths.allSatisfy { $0 == 0 }
        }
        print("kill -9 of the master to the first successful refresh after it: \(firstRefresh.shortDescription)")
        try await fleet.checkNoRotatedTokenWasLost()
    }
}
