import BatonLock
import BatonRedis
import BatonTestSupport
import XCTest

/// Base for lock tests: a throwaway redis-server (``RedisTestCase``) and a lock service per test.
class LockTestCase: RedisTestCase {
    func makeService(_ server: RedisServerProcess, poolSize: Int = 8, reconnect: ReconnectPolicy = .default) throws
        -> LockService
    {
        let client = try makeClient(server, options: .init(connection: .init(reconnect: reconnect), poolSize: poolSize))
        let service = try LockService(client: client, prefix: "test")
        addTeardownBlock { service.shutDown() }
        return service
    }

    /// A lock name unique to the running test.
    var lockName: String { testName }
}
