import BatonLock
import BatonRedis
import BatonTestSupport
import XCTest

final class ReplicationAndQuorumTests: LockTestCase {
    func testReplicaConfirmation() async throws {
        let master = try startRedis(arguments: ["--repl-diskless-sync-delay", "0"])
        let replica = try startRedis(arguments: ["--replicaof", "127.0.0.1", String(master.port)])
        let replicaConnection = try RedisConnection(url: replica.url)
        let masterConnection = try RedisConnection(url: master.url)
        // Wait until the master streams to the replica (its first sync is done).
        for _ in 0..<200 {
            if try masterConnection.send(RedisCommand("INFO", "replication")).string?.contains("state=online") == true {
                break
            }
            try await Task.sleep(for: .milliseconds(50))
        }
        let service = try makeService(master)
        let confirmed = try await service.lock(
            lockName, options: .init(replicaAcknowledgements: 1, replicaTimeout: .seconds(3))
        ).acquire(timeout: .seconds(1))
        XCTAssertEqual(
            try replicaConnection.send(RedisCommand("GET", "test:{\(lockName)}:lock")).string, confirmed.owner)
        try await confirmed.release()

        // Asking for more replicas than exist: acquired, not confirmed, released, typed error.
        let strict = try service.lock(
            lockName, options: .init(replicaAcknowledgements: 2, replicaTimeout: .milliseconds(200)))
        do {
            _ = try await strict.acquire(timeout: .seconds(1))
            XCTFail("two replicas cannot confirm: there is one")
        } catch let error as LockError {
            guard case .replicationNotConfirmed(_, let acknowledged, let required) = error else {
                return XCTFail("\(error)")
            }
            XCTAssertEqual(acknowledged, 1)
            XCTAssertEqual(required, 2)
        }
        let status = try await strict.status()
        XCTAssertNil(status.holder, "an unconfirmed lock is released")
    }

    func testQuorumOverThreeMasters() async throws {
        let servers = try (0..<3).map { _ in try startRedis() }
        let clients = try servers.map {
            try RedisClient(
                url: $0.url,
                options: .init(
                    connection: .init(
                        connectTimeout: .milliseconds(200), commandTimeout: .milliseconds(200), reconnect: .never)))
        }
        addTeardownBlock { clients.forEach { $0.shutDown() } }
        let lock = try QuorumLock(clients: clients, prefix: "test", name: lockName, ttl: .seconds(5))
        XCTAssertEqual(lock.quorum, 2)
        let lease = try await lock.acquire(timeout: .seconds(1))
        XCTAssertGreaterThan(lease.validity, .seconds(4))
        XCTAssertLessThanOrEqual(lease.validity, .seconds(5) - .milliseconds(52))
        do {
            _ = try await lock.acquire(timeout: .milliseconds(300))
            XCTFail("held on every master")
        } catch let error as LockError {
            guard case .quorumNotReached(_, let locked, let required, _) = error else { return XCTFail("\(error)") }
            XCTAssertEqual(locked, 0)
            XCTAssertEqual(required, 2)
        }
        let extended = await lease.extend()
        XCTAssertTrue(extended)
        await lease.release()

        // One master down: a majority is still reachable.
        servers[0].stop()
        let degraded = try await lock.acquire(timeout: .seconds(2))
        await degraded.release()
        // Two down: no majority.
        servers[1].stop()
        do {
            _ = try await lock.acquire(timeout: .milliseconds(500))
            XCTFail("one of three is not a majority")
        } catch let error as LockError {
            guard case .quorumNotReached(_, let locked, _, let errors) = error else { return XCTFail("\(error)") }
            XCTAssertEqual(locked, 1)
            XCTAssertEqual(errors.count, 2)
        }
        let survivor = try RedisConnection(url: servers[2].url)
        XCTAssertEqual(
            try survivor.send(RedisCommand("EXISTS", "test:{\(lockName)}:lock")), .integer(0),
            "a failed attempt releases what it took")
    }
}
