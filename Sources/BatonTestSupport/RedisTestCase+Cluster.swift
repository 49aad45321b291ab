import BatonRedis
import XCTest

extension RedisTestCase {
    /// Starts a throwaway Redis Cluster (``RedisClusterProcess/start(arguments:nodeTimeoutMilliseconds:timeout:)``)
    /// whose nodes are killed when the test ends.
    public func startCluster(nodeTimeoutMilliseconds: Int = 2000) async throws -> RedisClusterProcess {
        let cluster = try await RedisClusterProcess.start(nodeTimeoutMilliseconds: nodeTimeoutMilliseconds)
        addTeardownBlock { cluster.stop() }
        return cluster
    }

    /// A client for the cluster's `redis-cluster://` URL, shut down when the test ends.
    public func makeClient(_ cluster: RedisClusterProcess, options: RedisClientOptions = .init()) throws
        -> RedisClient
    {
        let client = try RedisClient(url: cluster.url, options: options)
        addTeardownBlock { client.shutDown() }
        return client
    }
}

extension RedisClusterProcess {
    /// A plain connection to one node (no cluster routing), to look at what that node holds.
    public func connection(toNode port: Int) throws -> RedisConnection {
        try RedisConnection(url: "redis://127.0.0.1:\(port)")
    }

    /// Every node's log, as one text for a failure message.
    public var logDump: String {
        logs().map { "--- \($0.name) ---\n\($0.log)" }.joined(separator: "\n")
    }
}
