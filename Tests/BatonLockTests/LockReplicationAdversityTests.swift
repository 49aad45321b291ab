import BatonRedis
import BatonSupport
import BatonTestSupport
import Foundation
import XCTest

@testable import BatonLock

/// Adversarial review: `LockOptions.replicaAcknowledgements` runs the lock's extend and its `WAIT`
/// in one `withConnection` body, like the token store's persist, and so shares its flaw: when the
/// server closes that connection right after the extend's reply, `RedisConnection` reconnects
/// before sending `WAIT`, which then counts every connected replica at once.
final class LockWaitOnAReplacedConnectionTests: XCTestCase {
    func testAWaitOnAReplacedConnectionDoesNotConfirmTheLock() async throws {
        let master = try RedisServerProcess.start(arguments: RedisServerProcess.replicationFriendlyArguments)
        addTeardownBlock { master.stop() }
        let replica = try RedisServerProcess.startReplica(of: master)
        addTeardownBlock { replica.stop() }
        try await eventually("the replica is online", timeout: .seconds(30), diagnostics: { replica.log }) {
            try master.onlineReplicas() == 1
        }
        // Connected, acknowledging nothing: no lock write can be confirmed.
        replica.signal(SIGSTOP)
        addTeardownBlock { replica.signal(SIGCONT) }
        let cutter = try RedisCutProxy(target: master.port, cutAfterReplyTo: [LockScripts.extend.sha1])
        addTeardownBlock { cutter.stop() }
        let client = try RedisClient(
            url: cutter.url,
            options: .init(
                connection: .init(commandTimeout: .seconds(2), reconnect: .init(giveUpAfter: .milliseconds(500)))))
        let locks = try LockService(client: client, prefix: "review")
        addTeardownBlock {
            locks.shutDown()
            client.shutDown()
        }
        let lock = try locks.lock(
            "job", options: .init(ttl: .seconds(5), replicaAcknowledgements: 1, replicaTimeout: .milliseconds(300)))
        do {
            let lease = try await lock.acquire(timeout: .seconds(2))
            XCTFail(
                "acquired (fence \(lease.fence.value)) with replicaAcknowledgements 1 although the only replica is "
                    + "frozen and never received the lock; proxy: \(cutter.log); master INFO replication: "
                    + "\((try? RedisCLI.info(port: master.port, section: "replication")) ?? [:])")
            _ = try? await lease.release()
        } catch LockError.replicationNotConfirmed(_, let acknowledged, let required) {
            XCTAssertEqual(acknowledged, 0)
            XCTAssertEqual(required, 1)
        }
        XCTAssertTrue(cutter.log.contains("CUT"), "the proxy cut the extend's connection: \(cutter.log)")
    }
}
