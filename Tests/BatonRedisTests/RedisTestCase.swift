import BatonRedis
import BatonTestSupport
import XCTest

/// Base for tests that need a real redis-server: starts one per test and stops it in teardown.
class RedisTestCase: XCTestCase {
    /// Starts a throwaway server that is stopped when the test ends, pass or fail.
    func startRedis(persistent: Bool = false, arguments: [String] = []) throws -> RedisServerProcess {
        let server = try RedisServerProcess.start(persistent: persistent, arguments: arguments)
        addTeardownBlock { server.stop() }
        return server
    }

    /// A client for `server`, shut down when the test ends.
    func makeClient(_ server: RedisServerProcess, options: RedisClientOptions = .init()) throws -> RedisClient {
        let client = try RedisClient(url: server.url, options: options)
        addTeardownBlock { client.shutDown() }
        return client
    }

    /// A key unique to the running test.
    func key(_ suffix: String = "") -> String {
        "test:\(name.filter { $0.isLetter || $0.isNumber }):\(suffix)"
    }
}
