import BatonRedis
import BatonTestSupport
import BatonTokens
import Foundation
import XCTest

@testable import BatonCoordinator

/// The coordinator with `persist_replicas: 1`: a shutdown while a rotated token waits for replicas
/// leaves it in the spool, and the next start stores it again and waits for a replica too.
final class ReplicaAcknowledgementCoordinatorTests: RedisTestCase {
    private var master: RedisServerProcess!
    private var client: RedisClient!
    private var store: TokenStore!
    private var folder: URL!
    private let lines = LockedLines()

    override func setUp() async throws {
        master = try startRedis(arguments: RedisServerProcess.replicationFriendlyArguments)
        client = try makeClient(master, options: .init(poolSize: 16))
        store = TokenStore(client: client, prefix: "oauth", encryption: TestKeyring.encryption)
        try await store.seed(service: "my-api", refreshToken: "rt-0", replica: "ops")
        folder = FileManager.default.temporaryDirectory.appendingPathComponent("baton-acks-\(UUID().uuidString)")
        addTeardownBlock { [folder] in try? FileManager.default.removeItem(at: folder!) }
    }

    private var spool: RotatedTokenSpool {
        RotatedTokenSpool(stateDirectory: folder.path, encryption: TestKeyring.encryption)
    }

    private func spooledFiles() -> [String] {
        ((try? FileManager.default.contentsOfDirectory(atPath: spool.directory)) ?? []).filter { $0.hasSuffix(".json") }
    }

    private func coordinator(_ provider: ScriptedTokenProvider) throws -> Coordinator {
        let settings = RefreshSettings(lockTTL: .seconds(3), lockWait: .seconds(2), requestTimeout: .seconds(2))
        let lines = self.lines
        return try Coordinator(
            client: client,
            options: .init(
                replica: "r1", encryption: TestKeyring.encryption, scheduleJitter: .milliseconds(50),
                shutdownGrace: .seconds(1),
                replicaAcknowledgement: .init(replicas: 1, timeout: .milliseconds(200))),
            services: [ServiceDefinition(name: "my-api", settings: settings, provider: provider)],
            log: StructuredLog(replica: "r1", minimum: .debug) { lines.append($0) }, spool: spool)
    }

    private func logged(_ event: String) -> [String] {
        lines.all.filter { $0.contains("\"event\":\"\(event)\"") }
    }

    private func diagnostics() -> String {
        "spool: \(spooledFiles())\nthe coordinator's log:\n" + lines.all.joined(separator: "\n")
    }

    func testAShutdownLeavesTheTokenInTheSpoolAndTheNextStartWaitsForAReplica() async throws {
        let provider = ScriptedTokenProvider(lifetime: .seconds(600))
        let first = try coordinator(provider)
        let running = Task { await first.run() }
        try await eventually("replicas_pending for each attempt", diagnostics: diagnostics) {
            logged("replicas_pending").count >= 2
        }
        XCTAssertTrue(logged("refreshed").isEmpty, "no success while no replica has the token")
        let pending = try XCTUnwrap(logged("replicas_pending").last)
        for field in [#""acknowledged":0"#, #""required":1"#, #""service":"my-api""#, #""waited_ms":"#] {
            XCTAssertTrue(pending.contains(field), pending)
        }
        first.stop()
        await running.value
        XCTAssertEqual(spooledFiles().count, 1, "shutdown abandons the wait, not the token: \(diagnostics())")
        XCTAssertEqual(provider.callCount, 1)

        let replica = try RedisServerProcess.startReplica(of: master)
        addTeardownBlock { replica.stop() }
        try await eventually("the replica is online", timeout: .seconds(30), diagnostics: { replica.log }) {
            try self.master.onlineReplicas() == 1
        }
        let second = try coordinator(provider)
        let restarted = Task { await second.run() }
        defer { second.stop() }
        try await eventually("the replayed token is acknowledged", diagnostics: diagnostics) {
            logged("replicas_acknowledged").count == 1 && spooledFiles().isEmpty
        }
        // The replay's summary line follows the acknowledgement and the file's removal.
        try await eventually("the replay is logged", diagnostics: diagnostics) {
            logged("spool_replayed").contains {
                $0.contains(#""stored":1"#) && $0.contains(#""awaiting_replicas":0"#)
            }
        }
        let awaiting = try await store.awaitingReplicas(["my-api"])
        XCTAssertTrue(awaiting.isEmpty, "the mark is cleared")
        let secret = try await store.secret("my-api")
        XCTAssertEqual(secret?.refreshToken, "rt-1", "the rotated token is the stored one")
        second.stop()
        await restarted.value
        XCTAssertEqual(provider.callCount, 1, "the stored token is fresh: no second provider call")
    }
}
