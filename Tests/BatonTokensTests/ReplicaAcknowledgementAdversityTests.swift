import BatonConfig
import BatonLock
import BatonRedis
import BatonSupport
import BatonTestSupport
import Foundation
import XCTest

@testable import BatonTokens

/// Adversarial review of the `persist_replicas` wait: each test shows one way in which the wait
/// reports replicas that do not have the rotated refresh token.
final class WaitOnAReplacedConnectionTests: XCTestCase {
    private var master: RedisServerProcess!
    private var provider: FakeOAuthProvider!
    private var direct: RedisClient!
    private var folder: URL!
    private let reports = LockedBox<[ReplicaAcknowledgementReport]>([])

    override func setUpWithError() throws {
        master = try RedisServerProcess.start(arguments: RedisServerProcess.replicationFriendlyArguments)
        provider = try FakeOAuthProvider.start(lifetime: 30)
        direct = try RedisClient(url: master.url)
        folder = FileManager.default.temporaryDirectory.appendingPathComponent("baton-review-\(UUID().uuidString)")
    }

    override func tearDown() {
        direct?.shutDown()
        provider?.stop()
        master?.stop()
        try? FileManager.default.removeItem(at: folder)
    }

    private var spool: RotatedTokenSpool {
        RotatedTokenSpool(stateDirectory: folder.path, encryption: TestKeyring.encryption)
    }

    private func spooledFiles() -> [String] {
        ((try? FileManager.default.contentsOfDirectory(atPath: spool.directory)) ?? []).filter { $0.hasSuffix(".json") }
    }

    private func service() throws -> (RefreshSettings, OAuthTokenProvider) {
        let json = TestConfiguration(settings: ["lock_ttl": "2s", "lock_wait": "5s"])
            .service("my-api", tokenURL: provider.tokenURL, ["refresh_buffer": "10s", "request_timeout": "1s"]).json
        let configuration = try BatonConfiguration.parse(Array(json.utf8), environment: TestConfiguration.environment)
        let service = configuration.services[0]
        return (RefreshSettings(service, configuration: configuration), OAuthTokenProvider(service: service))
    }

    private func secret(on server: RedisServerProcess) throws -> String? {
        let connection = try RedisConnection(url: server.url)
        defer { connection.close() }
        let bytes = try connection.send(RedisCommand("GET", "oauth:{my-api}:secret")).bytes
        return try bytes.map {
            try SecretSealer(prefix: "oauth", encryption: TestKeyring.encryption).open($0, service: "my-api")
                .refreshToken
        }
    }

    private var shortfalls: Int { reports.withLockedValue { $0 }.filter { !$0.isAcknowledged }.count }

    /// The connection that ran the persist script is closed by the server right after its reply
    /// (a Sentinel reconfiguring a demoted master sends `CLIENT KILL TYPE normal`; an operator, a
    /// proxy or a network blip can do the same). `RedisConnection` reconnects before sending the
    /// `WAIT`, so the `WAIT` runs on a new connection that wrote nothing: it counts every connected
    /// replica at once, whatever it has received. Here the only replica sits behind a frozen
    /// replication link: it never gets the rotated token, yet the refresh returns, the spool file
    /// is removed, and a failover to that replica loses the only valid refresh token.
    func testAWaitOnAReplacedConnectionDoesNotCountAsAnAcknowledgement() async throws {
        // master -> link (a proxy we can freeze) -> replica
        let link = try RedisCutProxy(target: master.port)
        addTeardownBlock { link.stop() }
        let replica = try RedisServerProcess.start(arguments: ["--replicaof", "127.0.0.1", String(link.port)])
        addTeardownBlock { replica.stop() }
        try await eventually("the replica is online", timeout: .seconds(30), diagnostics: { replica.log }) {
            try master.onlineReplicas() == 1
        }
        let store = TokenStore(client: direct, prefix: "oauth", encryption: TestKeyring.encryption)
        let seeded = try provider.seedRefreshToken()
        try await store.seed(service: "my-api", refreshToken: seeded, replica: "ops")
        try await eventually("the replica has the seed", diagnostics: { replica.log }) {
            try secret(on: replica) == seeded
        }

        // The link stops delivering: the master still counts the replica as online.
        link.signal(SIGSTOP)
        // Baton talks to the master through a proxy that closes its connection right after the
        // reply to the persist of a rotated token (event `refreshed`), once.
        let cutter = try RedisCutProxy(target: master.port, cutAfterReplyTo: ["oauth:{my-api}:secret", "refreshed"])
        addTeardownBlock { cutter.stop() }
        let client = try RedisClient(
            url: cutter.url,
            options: .init(
                connection: .init(commandTimeout: .seconds(2), reconnect: .init(giveUpAfter: .milliseconds(500)))))
        let locks = try LockService(client: client, prefix: "oauth")
        addTeardownBlock {
            locks.shutDown()
            client.shutDown()
        }
        let reports = reports
        let refresher = TokenRefresher(
            store: TokenStore(client: client, prefix: "oauth", encryption: TestKeyring.encryption), locks: locks,
            replica: "holder", spool: spool,
            acknowledgement: .init(replicas: 1, timeout: .milliseconds(300)),
            onReplicaAcknowledgement: { report in reports.withLockedValue { $0.append(report) } })
        let (settings, oauth) = try service()
        let finished = LockedBox(false)
        let refreshing = Task {
            defer { finished.withLockedValue { $0 = true } }
            return try await refresher.refresh(
                "my-api", settings: settings, provider: oauth, request: .forced(seenVersion: nil))
        }
        let diagnostics = {
            "cutter: \(cutter.log)\nreports: \(reports.withLockedValue { $0 })\nspool: \(self.spooledFiles())\n"
                + "master INFO replication: \((try? RedisCLI.info(port: self.master.port, section: "replication")) ?? [:])"
        }
        try await eventually("the refresh returns or an attempt falls short", diagnostics: diagnostics) {
            finished.withLockedValue { $0 } || shortfalls >= 2
        }
        XCTAssertTrue(cutter.log.contains("CUT"), "the proxy cut the persist's connection: \(diagnostics())")

        guard finished.withLockedValue({ $0 }) else {
            // The expected behaviour: no success while the only replica lacks the token.
            link.signal(SIGCONT)
            _ = try await refreshing.value
            XCTAssertEqual(try secret(on: replica), try secret(on: master))
            return
        }
        let record = try await refreshing.value
        let rotated = try secret(on: master)
        XCTFail(
            "the refresh returned (version \(record.version)) although its only replica never received the rotated "
                + "token; spool now \(spooledFiles()); \(diagnostics())")

        // What that costs: the master dies, the replica is promoted; the link drops what it held.
        link.signal(SIGKILL)
        master.kill9()
        let promote = try RedisConnection(url: replica.url)
        try promote.send(RedisCommand("REPLICAOF", "NO", "ONE"))
        promote.close()
        XCTAssertEqual(
            try secret(on: replica), rotated,
            "after the failover the rotated refresh token is nowhere: not on the new master, not in the spool "
                + "(\(spooledFiles())); the new master has the seed, which the provider already invalidated")
    }
}

/// Adversarial review of the `awaiting-replicas` mark: it is keyed on the replica that waited,
/// but a spooled token is usually replayed by another process (a `baton refresh` abandons, the
/// host's `baton serve` replays), which cannot clear it.
final class AwaitingReplicasMarkTests: XCTestCase {
    func testAMarkIsClearedWhenAnotherProcessReplaysTheTokenToEnoughReplicas() async throws {
        let master = try RedisServerProcess.start(arguments: RedisServerProcess.replicationFriendlyArguments)
        addTeardownBlock { master.stop() }
        let provider = try FakeOAuthProvider.start(lifetime: 30)
        addTeardownBlock { provider.stop() }
        let replica = try RedisServerProcess.startReplica(of: master)
        addTeardownBlock { replica.stop() }
        try await eventually("the replica is online", timeout: .seconds(30), diagnostics: { replica.log }) {
            try master.onlineReplicas() == 1
        }
        let client = try RedisClient(url: master.url)
        let locks = try LockService(client: client, prefix: "oauth")
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("baton-mark-\(UUID().uuidString)")
        addTeardownBlock {
            locks.shutDown()
            client.shutDown()
            try? FileManager.default.removeItem(at: folder)
        }
        let store = TokenStore(client: client, prefix: "oauth", encryption: TestKeyring.encryption)
        try await store.seed(service: "my-api", refreshToken: try provider.seedRefreshToken(), replica: "ops")
        let spool = RotatedTokenSpool(stateDirectory: folder.path, encryption: TestKeyring.encryption)
        // persist_timeout 5 s: the mark lives (5 s + 2 s) * 3 = 21 s after its last attempt.
        let acknowledgement = ReplicaAcknowledgement(replicas: 1, timeout: .seconds(5))
        let shortfalls = LockedBox(0)
        let cli = TokenRefresher(
            store: store, locks: locks, replica: "host:4242", spool: spool, acknowledgement: acknowledgement,
            onReplicaAcknowledgement: { report in if !report.isAcknowledged { shortfalls.withLockedValue { $0 += 1 } } }
        )
        let json = TestConfiguration(settings: ["lock_ttl": "10s", "lock_wait": "5s"])
            .service("my-api", tokenURL: provider.tokenURL, ["refresh_buffer": "10s", "request_timeout": "1s"]).json
        let configuration = try BatonConfiguration.parse(Array(json.utf8), environment: TestConfiguration.environment)
        let settings = RefreshSettings(configuration.services[0], configuration: configuration)
        let oauth = OAuthTokenProvider(service: configuration.services[0])

        replica.signal(SIGSTOP)
        addTeardownBlock { replica.signal(SIGCONT) }
        let refreshing = Task {
            try await cli.refresh("my-api", settings: settings, provider: oauth, request: .forced(seenVersion: nil))
        }
        try await eventually("an attempt falls short", timeout: .seconds(30)) { shortfalls.withLockedValue { $0 } >= 1 }
        try await client.send("DEL", "oauth:{my-api}:lock")  // the lease is lost: the wait is abandoned
        _ = try? await refreshing.value
        let marked = try await store.awaitingReplicas(["my-api"])["my-api"]
        XCTAssertEqual(marked?.replica, "host:4242")

        // The host's `baton serve` replays the token once the replica is back: acknowledged.
        replica.signal(SIGCONT)
        let serve = TokenRefresher(
            store: store, locks: locks, replica: "replica-a", spool: spool, acknowledgement: acknowledgement)
        let replayed = try await serve.replaySpool()
        XCTAssertEqual(replayed, .init(stored: 1, superseded: 0, awaitingReplicas: 0))
        let after = try await store.awaitingReplicas(["my-api"])
        let ttl = try await client.send("PTTL", "oauth:{my-api}:awaiting-replicas").integer ?? -2
        XCTAssertNil(
            after["my-api"],
            "the token is on enough replicas and out of the spool, yet `baton status` still says awaiting_replicas "
                + "(mark \(String(describing: after["my-api"])), for another \(ttl) ms)")
    }
}
