import BatonLock
import BatonRedis
import BatonTestSupport
import XCTest

/// The lock's scripts and its pub/sub hand-over over `rediss://`.
final class LockOverTLSTests: XCTestCase {
    func testTheLockOverTLS() async throws {
        let server = try RedisServerProcess.start(tls: .init())
        defer { server.stop() }
        let client = try RedisClient(url: server.tlsURL())
        let locks = try LockService(client: client, prefix: "baton")
        defer {
            locks.shutDown()
            client.shutDown()
        }
        let lock = try locks.lock("tls-job", options: .init(ttl: .seconds(5)))
        let first = try await lock.acquire(timeout: .seconds(2))
        // A second caller waits for the hand-over (a pub/sub wake-up over TLS).
        let waiter = Task { try await lock.acquire(timeout: .seconds(10)) }
        try await Task.sleep(for: .milliseconds(100))
        try await first.release()
        let second = try await waiter.value
        XCTAssertGreaterThan(second.fence, first.fence)
        try await second.release()
    }

}
