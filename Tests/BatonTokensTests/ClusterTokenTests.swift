import BatonConfig
import BatonLock
import BatonRedis
import BatonSupport
import BatonTestSupport
import BatonTokens
import Foundation
import XCTest

/// The refresh protocol against a real Redis Cluster and the fake provider: services on every
/// master, refreshes that go on while their slots move, and a master failover with a refresh in
/// flight that loses no rotated refresh token (`persist_replicas: 1`).
final class ClusterTokenTests: RedisTestCase {
    private var provider: FakeOAuthProvider!
    private var cluster: RedisClusterProcess!
    private var client: RedisClient!
    private var store: TokenStore!
    private var locks: LockService!
    private var folder: URL!

    private func start(lifetime: Double = 30) async throws {
        cluster = try await startCluster()
        provider = try FakeOAuthProvider.start(lifetime: lifetime)
        client = try makeClient(
            cluster,
            options: .init(connection: .init(commandTimeout: .seconds(2), reconnect: .init(giveUpAfter: .seconds(1)))))
        store = TokenStore(client: client, prefix: "oauth", encryption: TestKeyring.encryption)
        locks = try LockService(client: client, prefix: "oauth")
        folder = FileManager.default.temporaryDirectory.appendingPathComponent("baton-cluster-\(UUID().uuidString)")
        addTeardownBlock { [locks, provider, folder] in
            locks?.shutDown()
            provider?.stop()
            try? FileManager.default.removeItem(at: folder!)
        }
    }

    /// `count` service names, their keys spread over every master (at least one per master).
    private func servicesOnEveryMaster(count: Int) throws -> [String] {
        let masters = try cluster.masterPorts()
        var chosen: [String] = []
        var covered: Set<Int> = []
        var index = 0
        while chosen.count < count || covered.count < masters.count {
            let name = "api-\(index)"
            let owner = try cluster.masterPort(forSlot: HashSlot.of("oauth:{\(name)}:token"))
            if !covered.contains(owner) || covered.count == masters.count {
                chosen.append(name)
                covered.insert(owner)
            }
            index += 1
        }
        return chosen
    }

    private func configuration(_ services: [String]) throws -> BatonConfiguration {
        var json = TestConfiguration(settings: ["lock_ttl": "10s", "lock_wait": "10s"])
        for service in services {
            json = json.service(
                service, tokenURL: provider.tokenURL, ["refresh_buffer": "10s", "request_timeout": "5s"])
        }
        return try BatonConfiguration.parse(Array(json.json.utf8), environment: TestConfiguration.environment)
    }

    private func refresher(acknowledgement: ReplicaAcknowledgement = .none, errors: LockedBox<[String]>? = nil)
        -> TokenRefresher
    {
        TokenRefresher(
            store: store, locks: locks, replica: "test",
            spool: RotatedTokenSpool(stateDirectory: folder.path, encryption: TestKeyring.encryption),
            acknowledgement: acknowledgement,
            onPersistRetry: { service, error in errors?.withLockedValue { $0.append("\(service): persist: \(error)") } }
        )
    }

    private static func forcedRefresh(
        _ service: String, _ configuration: BatonConfiguration, with refresher: TokenRefresher
    ) async throws -> TokenRecord {
        let settings = try XCTUnwrap(configuration.service(service))
        return try await refresher.refresh(
            service, settings: RefreshSettings(settings, configuration: configuration),
            provider: OAuthTokenProvider(service: settings), request: .forced(seenVersion: nil))
    }

    private func seed(_ services: [String]) async throws {
        for service in services {
            try await store.seed(service: service, refreshToken: try provider.seedRefreshToken(), replica: "ops")
        }
    }

    private func diagnostics() -> String {
        "provider: \((try? provider.stats()) ?? [:])\n\(cluster.logDump.suffix(6000))"
    }

    func testServicesOnEveryMasterRefreshAndAreListed() async throws {
        try await start()
        let services = try servicesOnEveryMaster(count: 6)
        let configuration = try configuration(services)
        try await seed(services)
        let refresher = refresher()
        var versions: [String: Int64] = [:]
        for service in services {
            let record = try await Self.forcedRefresh(service, configuration, with: refresher)
            XCTAssertEqual(record.status, .ok)
            versions[service] = record.version
        }
        for service in services {
            let again = try await Self.forcedRefresh(service, configuration, with: refresher)
            XCTAssertGreaterThan(again.version, versions[service]!, "the rotated token was used")
        }
        // The registry is one key; the records are read with one pipeline across every node.
        let listed = try await store.services()
        XCTAssertEqual(Set(listed), Set(services))
        let records = try await store.records(services)
        XCTAssertEqual(Set(records.keys), Set(services))
        for service in services {
            let events = try await store.events(service).compactMap(\.kind)
            XCTAssertEqual(events, [.refreshed, .refreshed, .seeded], service)
        }
        XCTAssertEqual(try provider.tokenRequests(), 2 * services.count)
        XCTAssertEqual(try provider.invalidGrants(), 0)
    }

    func testRefreshesGoOnWithoutAnErrorWhileSlotsMove() async throws {
        try await start()
        let services = try servicesOnEveryMaster(count: 4)
        let configuration = try configuration(services)
        try await seed(services)
        let errors = LockedBox([String]())
        let refreshed = LockedBox(0)
        let stop = StopFlag()
        defer { stop.set() }
        let refresher = refresher(errors: errors)
        // One stream of forced refreshes per service, all the time.
        let streams = services.map { service in
            Task {
                while !stop.isSet {
                    do {
                        let record = try await Self.forcedRefresh(service, configuration, with: refresher)
                        if record.status != .ok { errors.withLockedValue { $0.append("\(service): \(record.status)") } }
                        refreshed.withLockedValue { $0 += 1 }
                    } catch {
                        errors.withLockedValue { $0.append("\(service): \(error)") }
                    }
                }
            }
        }
        let seen = { [self] in "errors: \(errors.withLockedValue { $0.prefix(5) })\n\(diagnostics())" }
        func refreshes(beyond count: Int) async throws {
            try await eventually("more refreshes", timeout: .seconds(30), diagnostics: seen) {
                refreshed.withLockedValue { $0 } >= count + 2 * services.count
            }
        }
        try await refreshes(beyond: 0)
        // Every service's slot moves to another master, and so do the registry and the request list.
        let moving =
            services.map { HashSlot.of("oauth:{\($0)}:token") }
            + [
                HashSlot.of(TokenKeys.services(prefix: "oauth")),
                HashSlot.of(TokenKeys.refreshRequests(prefix: "oauth")),
            ]
        for slot in moving {
            let owner = try cluster.masterPort(forSlot: slot)
            try await cluster.migrateSlot(slot, to: try cluster.masterPorts().first { $0 != owner }!)
            try await refreshes(beyond: refreshed.withLockedValue { $0 })
        }
        // And a bulk reshard with redis-cli, which moves slots with keys in batches.
        let masters = try cluster.masterPorts()
        try await cluster.reshard(slots: 200, from: masters[0], to: masters[1])
        try await refreshes(beyond: refreshed.withLockedValue { $0 })
        stop.set()
        for stream in streams { await stream.value }

        XCTAssertEqual(errors.withLockedValue { $0 }, [], "nobody saw the slots move")
        XCTAssertEqual(try provider.invalidGrants(), 0)
        XCTAssertEqual(try provider.tokenRequests(), refreshed.withLockedValue { $0 }, "one provider call per refresh")
        let listed = try await store.services()
        XCTAssertEqual(Set(listed), Set(services))
    }

    func testAFailoverWithARefreshInFlightLosesNoRotatedToken() async throws {
        try await start()
        let services = try servicesOnEveryMaster(count: 3)
        let configuration = try configuration(services)
        try await seed(services)
        let victim = services[0]
        let slot = HashSlot.of("oauth:{\(victim)}:token")
        let errors = LockedBox([String]())
        // persist_replicas: 1: a rotated token is done once a replica of its master has it.
        let refresher = refresher(acknowledgement: .init(replicas: 1, timeout: .seconds(1)), errors: errors)
        for service in services {
            _ = try await Self.forcedRefresh(service, configuration, with: refresher)
        }
        let before = try await Self.forcedRefresh(victim, configuration, with: refresher)

        // The provider rotates the token and then answers slowly: the kill lands in between.
        let requests = try provider.tokenRequests()
        try provider.setMode("normal", count: 1, delay: 1.5)
        let inFlight = Task { [victim, configuration, refresher] in
            try await ClusterTokenTests.forcedRefresh(victim, configuration, with: refresher)
        }
        try await eventually("the refresh reaches the provider", diagnostics: diagnostics) {
            try provider.tokenRequests() > requests
        }
        let killed = try cluster.killMaster(ofSlot: slot)
        let killedAt = ContinuousClock.now
        let promoted = try await cluster.waitForFailover(awayFrom: killed)
        let failedOver = ContinuousClock.now - killedAt
        // The promoted replica has no replica of its own until the crashed node comes back as
        // one: until then the rotated token waits (spooled, lock held) for an acknowledgement.
        try await eventually("the rotated token is written to the promoted master", diagnostics: diagnostics) {
            let stored = try cluster.connection(toNode: promoted).send(RedisCommand("GET", "oauth:{\(victim)}:token"))
            return try stored.bytes.map { try TokenRecord.decode($0).version > before.version } ?? false
        }
        try await cluster.restartNode(port: killed)
        let record = try await inFlight.value
        XCTAssertEqual(record.status, .ok)
        XCTAssertGreaterThan(record.version, before.version)
        print(
            "kill -9 of the master: failover done after \(failedOver.shortDescription), the in-flight refresh "
                + "acknowledged by a replica after \((ContinuousClock.now - killedAt).shortDescription)")

        // The token stored on the promoted replica is the one the provider honours now.
        for service in services {
            let next = try await Self.forcedRefresh(service, configuration, with: refresher)
            XCTAssertEqual(next.status, .ok, service)
        }
        XCTAssertEqual(
            try provider.invalidGrants(), 0, "no rotated refresh token was lost\n\(errors.withLockedValue { $0 })")
        let spool = RotatedTokenSpool(stateDirectory: folder.path, encryption: TestKeyring.encryption).directory
        let spooled = (try? FileManager.default.contentsOfDirectory(atPath: spool)) ?? []
        XCTAssertEqual(spooled.filter { $0.hasSuffix(".json") }, [], "nothing left in the spool")
    }
}
