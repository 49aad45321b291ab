import BatonRedis
import BatonTestSupport
import XCTest

@testable import BatonLock

/// The lock's essentials against a real Redis Cluster: every lock's keys share a hash tag, so its
/// scripts run on the master of its slot; grants are classic `PUBLISH`es, which reach the one
/// pub/sub connection of the process whichever node it is on.
final class ClusterLockTests: LockTestCase {
    private func makeService(_ cluster: RedisClusterProcess) throws -> LockService {
        let service = try LockService(client: try makeClient(cluster), prefix: "test")
        addTeardownBlock { service.shutDown() }
        return service
    }

    /// One lock name per master, each served by a different node.
    private func lockNamesOnEveryMaster(_ cluster: RedisClusterProcess) throws -> [Int: String] {
        var names: [Int: String] = [:]
        let masters = try cluster.masterPorts()
        var index = 0
        while names.count < masters.count {
            let name = "\(lockName)\(index)"
            let owner = try cluster.masterPort(forSlot: HashSlot.of("test:{\(name)}:lock"))
            if names[owner] == nil { names[owner] = name }
            index += 1
        }
        return names
    }

    func testAcquireReleaseFencingAndHandOverOnEveryMaster() async throws {
        let cluster = try await startCluster()
        let service = try makeService(cluster)
        for (port, name) in try lockNamesOnEveryMaster(cluster).sorted(by: { $0.key < $1.key }) {
            let lock = try service.lock(name, options: .init(ttl: .seconds(10)))
            let node = try cluster.connection(toNode: port)
            let lease = try await lock.acquire(timeout: .zero)
            XCTAssertEqual(try node.send(RedisCommand("GET", lock.keys.lock)).string, lease.owner, "on its node")
            let other = try await lock.tryAcquire()
            XCTAssertNil(other, "a held lock cannot be taken")
            let extended = try await lease.extend()
            XCTAssertTrue(extended)
            let status = try await lock.status()
            XCTAssertEqual(status.holder, lease.owner)
            XCTAssertEqual(status.fence, lease.fence)

            // Hand-over: the waiter is woken by the grant's PUBLISH (the fallback would wait 2.5 s).
            let waiter = Task { try await lock.acquire(timeout: .seconds(10)) }
            try await eventually("the waiter queues") { try await lock.status().waiters == 1 }
            let releasedAt = ContinuousClock.now
            try await lease.release()
            let next = try await waiter.value
            XCTAssertLessThan(ContinuousClock.now - releasedAt, .seconds(1), "woken by the grant, not by polling")
            XCTAssertEqual(next.fence.value, lease.fence.value + 1)

            // Fencing: the earlier holder's write is refused once the successor has written.
            let state = "test:{\(name)}:state"
            let successorWrote = try await lock.fencedSet(state, value: "successor", fence: next.fence)
            XCTAssertTrue(successorWrote)
            let staleWrote = try await lock.fencedSet(state, value: "stale", fence: lease.fence)
            XCTAssertFalse(staleWrote)
            XCTAssertEqual(try node.send(RedisCommand("HGET", state, "value")).string, "successor")
            let released = try await next.release()
            XCTAssertTrue(released)
            let free = try await lock.status()
            XCTAssertNil(free.holder)
        }
    }

    func testReplicaAcknowledgementsAreCountedOnTheLocksNode() async throws {
        let cluster = try await startCluster()
        let service = try makeService(cluster)
        for name in try lockNamesOnEveryMaster(cluster).values {
            // The extend and its WAIT run on the lock's node (routed by the lock key), whose replica
            // confirms (generously timed: a busy machine can stall a replica for a moment).
            let lock = try service.lock(
                name, options: .init(ttl: .seconds(10), replicaAcknowledgements: 1, replicaTimeout: .seconds(5)))
            let lease = try await lock.acquire(timeout: .seconds(5))
            XCTAssertFalse(lease.isLost)
            try await lease.release()
        }
    }

    func testAHeldLockAndItsWaiterSurviveASlotMigration() async throws {
        let cluster = try await startCluster()
        let service = try makeService(cluster)
        let lock = try service.lock(lockName, options: .init(ttl: .seconds(10)))
        let slot = HashSlot.of(lock.keys.lock)
        let holder = try await lock.acquire(timeout: .zero)
        let waiter = Task { try await lock.acquire(timeout: .seconds(30)) }
        try await eventually("the waiter queues") { try await lock.status().waiters == 1 }

        let target = try cluster.masterPorts().first { $0 != (try cluster.masterPort(forSlot: slot)) }!
        try await cluster.migrateSlot(slot, to: target)
        let extended = try await holder.extend()
        XCTAssertTrue(extended, "the holder still holds it on the slot's new node")
        let status = try await lock.status()
        XCTAssertEqual(status.holder, holder.owner)
        XCTAssertEqual(status.waiters, 1)

        try await holder.release()
        let next = try await waiter.value
        XCTAssertEqual(next.fence.value, holder.fence.value + 1, "the fence counter moved with the slot")
        XCTAssertEqual(
            try cluster.connection(toNode: target).send(RedisCommand("GET", lock.keys.lock)).string, next.owner)
        try await next.release()
    }
}
