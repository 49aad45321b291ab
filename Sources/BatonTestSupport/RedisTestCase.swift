import BatonRedis
import XCTest

/// Base for tests that need a real redis-server: each test starts its own and everything it
/// starts is stopped in teardown, pass or fail.
open class RedisTestCase: XCTestCase {
    /// Starts a throwaway server that is stopped when the test ends.
    public func startRedis(persistent: Bool = false, arguments: [String] = []) throws -> RedisServerProcess {
        let server = try RedisServerProcess.start(persistent: persistent, arguments: arguments)
        addTeardownBlock { server.stop() }
        return server
    }

    /// A client for `server`, shut down when the test ends.
    public func makeClient(_ server: RedisServerProcess, options: RedisClientOptions = .init()) throws -> RedisClient {
        let client = try RedisClient(url: server.url, options: options)
        addTeardownBlock { client.shutDown() }
        return client
    }

    /// The running test's name, letters and digits only: a base for key and lock names, so
    /// tests never collide.
    public var testName: String { name.filter { $0.isLetter || $0.isNumber } }

    /// A key unique to the running test.
    public func key(_ suffix: String = "") -> String {
        "test:\(testName):\(suffix)"
    }
}
