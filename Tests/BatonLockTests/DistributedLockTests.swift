import BatonRedis
import BatonTestSupport
import XCTest

@testable import BatonLock

final class DistributedLockTests: LockTestCase {
    func testAcquireReleaseExtendAndNotHeld() async throws {
        let server = try startRedis()
        let service = try makeService(server)
        let lock = try service.lock(lockName, options: .init(ttl: .seconds(5)))
        let lease = try await lock.acquire(timeout: .zero)
        let other = try await lock.tryAcquire()
        XCTAssertNil(other, "a held lock cannot be taken")

        let redis = try RedisConnection(url: server.url)
        XCTAssertEqual(try redis.send(RedisCommand("GET", lock.keys.lock)).string, lease.owner)
        XCTAssertTrue(
            lease.owner.hasPrefix(ProcessInfo.processInfo.hostName + ":\(ProcessInfo.processInfo.processIdentifier):"))
        XCTAssertEqual(lock.keys.lock, "test:{\(lockName)}:lock")
        XCTAssertEqual(lock.keys.fence, "test:{\(lockName)}:fence")

        try redis.send(RedisCommand("PEXPIRE", lock.keys.lock, 1000))
        let extended = try await lease.extend()
        XCTAssertTrue(extended)
        XCTAssertGreaterThan(try redis.send(RedisCommand("PTTL", lock.keys.lock)).integer ?? 0, 4000)

        let status = try await lock.status()
        XCTAssertEqual(status.holder, lease.owner)
        XCTAssertEqual(status.fence, lease.fence)
        XCTAssertEqual(
            status.holderLabel, "\(ProcessInfo.processInfo.hostName):\(ProcessInfo.processInfo.processIdentifier)")

        let released = try await lease.release()
        XCTAssertTrue(released)
        let releasedAgain = try await lease.release()
        XCTAssertFalse(releasedAgain, "releasing twice is not success")
        XCTAssertEqual(try redis.send(RedisCommand("EXISTS", lock.keys.lock)), .integer(0))
        let extendedAfterRelease = try await lease.extend()
        XCTAssertFalse(extendedAfterRelease, "extending a released lock reports not held")
        XCTAssertTrue(lease.isLost)
    }

    func testTTLExpiryAndStrictlyIncreasingFences() async throws {
        let server = try startRedis()
        let service = try makeService(server)
        let lock = try service.lock(lockName, options: .init(ttl: .milliseconds(300), autoRenew: false))
        var fences: [FencingToken] = []
        let first = try await lock.acquire(timeout: .zero)
        fences.append(first.fence)
        try await Task.sleep(for: .milliseconds(400))
        // The first holder never released: its TTL ran out and the lock is free again.
        let second = try await lock.acquire(timeout: .zero)
        fences.append(second.fence)
        let firstExtended = try await first.extend()
        XCTAssertFalse(firstExtended)
        let firstReleased = try await first.release()
        XCTAssertFalse(firstReleased, "an expired holder cannot release the new holder's lock")
        let third = try await lock.tryAcquire()
        XCTAssertNil(third, "the second holder still holds it")
        try await second.release()
        for _ in 0..<20 {
            let lease = try await lock.acquire(timeout: .seconds(1))
            fences.append(lease.fence)
            try await lease.release()
        }
        XCTAssertEqual(fences, fences.sorted())
        XCTAssertEqual(Set(fences).count, fences.count, "fences are strictly increasing")
    }

    func testWatchdogRenewsPastTheTTL() async throws {
        let server = try startRedis()
        let service = try makeService(server)
        let lock = try service.lock(lockName, options: .init(ttl: .milliseconds(300)))
        let lease = try await lock.acquire(timeout: .zero)
        try await Task.sleep(for: .milliseconds(1000))
        XCTAssertFalse(lease.isLost)
        let stolen = try await lock.tryAcquire()
        XCTAssertNil(stolen, "renewed for three TTLs")
        try await lease.release()
        let next = try await lock.tryAcquire()
        XCTAssertNotNil(next)
    }

    func testWithLockReleasesOnReturnAndOnThrow() async throws {
        struct Boom: Error {}
        let server = try startRedis()
        let service = try makeService(server)
        let lock = try service.lock(lockName)
        let value = try await lock.withLock(timeout: .seconds(1)) { lease in lease.fence.value }
        XCTAssertGreaterThan(value, 0)
        let afterReturn = try await lock.status()
        XCTAssertNil(afterReturn.holder)
        do {
            _ = try await lock.withLock(timeout: .seconds(1)) { _ -> Int in throw Boom() }
            XCTFail("the body's error must propagate")
        } catch is Boom {}
        let afterThrow = try await lock.status()
        XCTAssertNil(afterThrow.holder, "released after a thrown error")
    }

    func testWithLockCancelsTheBodyWhenTheLeaseIsLost() async throws {
        let server = try startRedis()
        let service = try makeService(server)
        let lock = try service.lock(
            lockName, options: .init(ttl: .milliseconds(600), renewInterval: .milliseconds(100)))
        let started = ContinuousClock.now
        let forcer = Task {
            try await Task.sleep(for: .milliseconds(300))
            return try await lock.forceRelease()
        }
        do {
            _ = try await lock.withLock(timeout: .seconds(1)) { _ in
                try await Task.sleep(for: .seconds(10))
            }
            XCTFail("the body must be cancelled when the lease is lost")
        } catch let error as LockError {
            guard case .lost = error else { return XCTFail("\(error)") }
        }
        let forced = try await forcer.value
        XCTAssertNotNil(forced)
        XCTAssertLessThan(ContinuousClock.now - started, .seconds(2), "noticed at the next renewal")
    }

    func testWaiterIsHandedTheLockOnRelease() async throws {
        let server = try startRedis()
        let service = try makeService(server)
        let lock = try service.lock(lockName)
        let holder = try await lock.acquire(timeout: .zero)
        let waiter = Task { try await lock.acquire(timeout: .seconds(10)) }
        try await Task.sleep(for: .milliseconds(200))
        let status = try await lock.status()
        XCTAssertEqual(status.waiters, 1)
        let releasedAt = ContinuousClock.now
        try await holder.release()
        let next = try await waiter.value
        XCTAssertLessThan(ContinuousClock.now - releasedAt, .milliseconds(100), "woken by the grant, not by polling")
        XCTAssertEqual(next.fence.value, holder.fence.value + 1)
        let redis = try RedisConnection(url: server.url)
        XCTAssertEqual(try redis.send(RedisCommand("GET", lock.keys.lock)).string, next.owner)
        try await next.release()
    }

    func testWaitersAreServedInArrivalOrder() async throws {
        let server = try startRedis()
        let service = try makeService(server, poolSize: 8)
        let lock = try service.lock(lockName)
        let holder = try await lock.acquire(timeout: .zero)
        let order = OrderRecorder()
        var waiters: [Task<Void, any Error>] = []
        for index in 0..<5 {
            waiters.append(
                Task {
                    let lease = try await lock.acquire(timeout: .seconds(10))
                    order.append(index)
                    try await lease.release()
                })
            // Let each one queue before the next arrives.
            try await Task.sleep(for: .milliseconds(100))
        }
        try await holder.release()
        for waiter in waiters { try await waiter.value }
        XCTAssertEqual(order.values, [0, 1, 2, 3, 4])
    }

    func testCrashedHolderIsNoticedAtItsExpiry() async throws {
        let server = try startRedis()
        let service = try makeService(server)
        // A holder that never renews nor releases, as if its process died.
        let dead = try service.lock(lockName, options: .init(ttl: .milliseconds(800), autoRenew: false))
        let crashed = try await dead.acquire(timeout: .zero)
        let started = ContinuousClock.now
        let next = try await service.lock(lockName).acquire(timeout: .seconds(10))
        let waited = ContinuousClock.now - started
        XCTAssertLessThan(
            waited, .milliseconds(800 + 150), "bounded by the holder's remaining TTL, not the wait timeout")
        XCTAssertGreaterThan(next.fence, crashed.fence)
        try await next.release()
    }

    func testTimeoutIsTypedAndNamesTheHolder() async throws {
        let server = try startRedis()
        let service = try makeService(server)
        let lock = try service.lock(lockName)
        let holder = try await lock.acquire(timeout: .zero)
        let started = ContinuousClock.now
        do {
            _ = try await lock.acquire(timeout: .milliseconds(300))
            XCTFail("must time out")
        } catch let error as LockError {
            guard case .timedOut(let name, let waited, let who) = error else { return XCTFail("\(error)") }
            XCTAssertEqual(name, lockName)
            XCTAssertGreaterThanOrEqual(waited, .milliseconds(300))
            XCTAssertEqual(who, "\(ProcessInfo.processInfo.hostName):\(ProcessInfo.processInfo.processIdentifier)")
        }
        XCTAssertLessThan(ContinuousClock.now - started, .milliseconds(800))
        let status = try await lock.status()
        XCTAssertEqual(status.waiters, 0, "a waiter that gave up left the queue")
        try await holder.release()
    }

    func testCancelledWaiterLeavesTheQueue() async throws {
        let server = try startRedis()
        let service = try makeService(server)
        let lock = try service.lock(lockName)
        let holder = try await lock.acquire(timeout: .zero)
        let waiter = Task { try await lock.acquire(timeout: .seconds(30)) }
        try await Task.sleep(for: .milliseconds(200))
        waiter.cancel()
        do {
            _ = try await waiter.value
            XCTFail("a cancelled waiter must not get the lock")
        } catch is CancellationError {}
        let status = try await lock.status()
        XCTAssertEqual(status.waiters, 0)
        try await holder.release()
        let free = try await lock.status()
        XCTAssertNil(free.holder, "nobody was handed the lock")
    }

    func testPausedHolderLearnsItLostAndItsFencedWriteIsRejected() async throws {
        let server = try startRedis()
        let service = try makeService(server)
        // A holder that stops renewing, as if paused by GC or SIGSTOP, past its TTL.
        let paused = try await service.lock(lockName, options: .init(ttl: .milliseconds(300), autoRenew: false))
            .acquire(timeout: .zero)
        let lock = try service.lock(lockName)
        let state = "test:{\(lockName)}:state"
        let early = try await lock.fencedSet(state, value: "from paused holder", fence: paused.fence)
        XCTAssertTrue(early)
        try await Task.sleep(for: .milliseconds(400))
        let successor = try await lock.acquire(timeout: .seconds(1))
        let successorWrote = try await lock.fencedSet(state, value: "from successor", fence: successor.fence)
        XCTAssertTrue(successorWrote)
        // The paused holder resumes and writes with its old token: rejected.
        let staleWrote = try await lock.fencedSet(state, value: "stale", fence: paused.fence)
        XCTAssertFalse(staleWrote)
        let redis = try RedisConnection(url: server.url)
        XCTAssertEqual(try redis.send(RedisCommand("HGET", state, "value")).string, "from successor")
        let stillHeld = try await paused.extend()
        XCTAssertFalse(stillHeld)
        XCTAssertTrue(paused.isLost)
        try await successor.release()
    }

    func testRedisRestartWhileWaitersWait() async throws {
        let server = try startRedis()
        let service = try makeService(server, reconnect: .init(giveUpAfter: .seconds(5)))
        let lock = try service.lock(lockName, options: .init(ttl: .seconds(2)))
        let holder = try await lock.acquire(timeout: .zero)
        let done = OrderRecorder()
        let waiters = (0..<4).map { index in
            Task {
                let lease = try await lock.acquire(timeout: .seconds(20))
                try await Task.sleep(for: .milliseconds(20))
                try await lease.release()
                done.append(index)
            }
        }
        try await Task.sleep(for: .milliseconds(300))
        try server.restart()  // no persistence: the lock and the queue are gone
        for waiter in waiters { try await waiter.value }
        XCTAssertEqual(Set(done.values), [0, 1, 2, 3], "every waiter got the lock after the restart")
        _ = try? await holder.release()
    }

    func testScriptHashesMatchScriptLoad() async throws {
        let server = try startRedis()
        let service = try makeService(server)
        let scripts = LockScripts.all + [RedisScript.compareAndDelete]
        for script in scripts {
            let loaded = try await service.client.send("SCRIPT", "LOAD", script.source).string
            XCTAssertEqual(loaded, script.sha1)
        }
        XCTAssertEqual(scripts.count, 6)
    }

    func testInvalidNames() throws {
        let client = try RedisClient(url: "redis://127.0.0.1:1")
        let service = try LockService(client: client, prefix: "ok")
        for bad in ["", "has space", "brace{", "star*", String(repeating: "x", count: 129), "new\nline"] {
            XCTAssertThrowsError(try service.lock(bad), bad) { error in
                guard case .invalidName = error as? LockError else { return XCTFail("\(error)") }
            }
        }
        XCTAssertThrowsError(try LockService(client: client, prefix: "bad{prefix}"))
        XCTAssertNoThrow(try service.lock("my-api.v2_prod"))
    }
}

/// Collects values from concurrent tasks.
final class OrderRecorder: @unchecked Sendable {
    private let lock = NSLock()
    private var _values: [Int] = []
    func append(_ value: Int) { lock.withLock { _values.append(value) } }
    var values: [Int] { lock.withLock { _values } }
}
