import BatonLock
import BatonRedis
import BatonTestSupport
import XCTest

/// Base for lock tests: a throwaway redis-server, a client and a lock service per test.
class LockTestCase: XCTestCase {
    func startRedis(arguments: [String] = []) throws -> RedisServerProcess {
        let server = try RedisServerProcess.start(arguments: arguments)
        addTeardownBlock { server.stop() }
        return server
    }

    func makeService(_ server: RedisServerProcess, poolSize: Int = 8, reconnect: ReconnectPolicy = .default) throws -> LockService {
        let client = try RedisClient(url: server.url, options: .init(connection: .init(reconnect: reconnect), poolSize: poolSize))
        let service = try LockService(client: client, prefix: "test")
        addTeardownBlock {
            service.shutDown()
            client.shutDown()
        }
        return service
    }

    /// A lock name unique to the running test.
    var lockName: String { name.filter { $0.isLetter || $0.isNumber } }
}
