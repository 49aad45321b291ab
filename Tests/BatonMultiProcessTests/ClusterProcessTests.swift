import BatonRedis
import BatonSupport
import BatonTestSupport
import BatonTokens
import Foundation
import XCTest

/// Three `baton serve` replicas on a `redis-cluster://` URL refreshing rotating tokens of
/// services spread over every master: slot migrations while they run cause no warning and lose no
/// forced-refresh request; a master killed (-9) with a refresh in flight fails over to its replica
/// and, with `persist_replicas: 1`, no rotated refresh token is lost.
final class ClusterProcessTests: RedisTestCase {
    private var cluster: RedisClusterProcess!
    private var fleet: ServeFleet!

    /// A cluster and the fleet on it.
    private func start() async throws {
        cluster = try await startCluster()
        fleet = try await ServeFleet(redisURL: cluster.url)
        addTeardownBlock { [self] in fleet.stop() }
    }

    func testSlotMigrationsWhileServingCauseNoWarningAndLoseNoRequest() async throws {
        try await start()
        // Every service's slot, the registry's and the request list's move to another master,
        // each while refreshes run; then redis-cli reshards a batch of slots.
        let requests = TokenKeys.refreshRequests(prefix: "oauth")
        let slots =
            fleet.services.map { HashSlot.of("oauth:{\($0)}:token") }
            + [HashSlot.of(TokenKeys.services(prefix: "oauth")), HashSlot.of(requests)]
        var since = await fleet.versions()
        for slot in slots {
            let owner = try cluster.masterPort(forSlot: slot)
            try await cluster.migrateSlot(slot, to: try cluster.masterPorts().first { $0 != owner }!)
        }
        let masters = try cluster.masterPorts()
        try await cluster.reshard(slots: 300, from: masters[0], to: masters[1])
        try await fleet.everyServiceRefreshes(2, since: since, "every service refreshes twice after the moves")

        // Forced refreshes through the request list, now on another node than when the
        // replicas started consuming it: each is served.
        since = await fleet.versions()
        for service in fleet.services {
            let request = try JSONSerialization.data(
                withJSONObject: ["service": service, "version": since[service] ?? 0], options: [.sortedKeys])
            try await fleet.client.send("LPUSH", requests, Array(request))
        }
        try await fleet.everyServiceRefreshes(1, since: since, "every forced request is served")
        try await eventually("the request list and the processing lists are empty", diagnostics: fleet.diagnostics) {
            var lengths = [try await self.fleet.client.send("LLEN", requests).integer ?? -1]
            for id in ["replica-1", "replica-2", "replica-3"] {
                lengths.append(try await self.fleet.client.send("LLEN", "{\(requests)}:processing:\(id)").integer ?? -1)
            }
            return lengths.allSatisfy { $0 == 0 }
        }

        // `baton status` reads the registry (one key) and every service's keys across the nodes.
        let status = try BatonExecutable.run(["status", "--json", "--config", fleet.config])
        XCTAssertEqual(status.status, 0, status.output)
        let rows = try JSONSerialization.jsonObject(with: Data(status.output.utf8)) as? [[String: Any]] ?? []
        XCTAssertEqual(Set(rows.compactMap { $0["service"] as? String }), Set(fleet.services), status.output)

        let warnings = fleet.logs().flatMap { $0.split(separator: "\n") }.filter {
            $0.contains("\"level\":\"warn\"") || $0.contains("\"level\":\"error\"")
        }
        XCTAssertEqual(warnings, [], "nobody saw the slots move")
        try await fleet.checkNoRotatedTokenWasLost()
    }

    func testKillingAMasterMidRefreshLosesNoRotatedToken() async throws {
        try await start()
        let victim = try await fleet.serviceWithARefreshInFlight()
        let atKill = await fleet.versions()
        let killed = try cluster.killMaster(ofSlot: HashSlot.of("oauth:{\(victim)}:token"))
        let killedAt = ContinuousClock.now
        try await cluster.waitForFailover(awayFrom: killed)
        let failedOver = ContinuousClock.now - killedAt
        // The crashed node comes back as the new master's replica, which acknowledges from then on.
        try await cluster.restartNode(port: killed)
        try await fleet.everyServiceRefreshes(2, since: atKill, "every service refreshes twice more after the failover")
        print(
            "kill -9 of the master of '\(victim)' mid-refresh: failover after \(failedOver.shortDescription), "
                + "every service refreshed twice more after \((ContinuousClock.now - killedAt).shortDescription)")
        try await fleet.checkNoRotatedTokenWasLost()
    }
}
