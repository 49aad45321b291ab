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
final class ReplicaAcknowledgementReviewTests: XCTestCase {
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

    private var spool: RotatedTokenSpool { RotatedTokenSpool(stateDirectory: folder.path) }

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
        return try bytes.map { try SecretEnvelope.decode($0, service: "my-api").refreshToken }
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
        let store = TokenStore(client: direct, prefix: "oauth")
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
            store: TokenStore(client: client, prefix: "oauth"), locks: locks, replica: "holder", spool: spool,
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
