import Foundation

/// Options for a ``RedisClient``: its pool and its connections.
public struct RedisClientOptions: Sendable, Hashable {
    /// Options for each pooled connection.
    public var connection: RedisConnectionOptions
    /// The most connections (and worker threads) the client opens. Default: 8.
    public var poolSize: Int
    /// How long a command may wait for a free connection before failing with
    /// ``RedisError/poolTimeout(waited:poolSize:)``. Default: 5 seconds.
    public var poolWaitTimeout: Duration
    /// Told the round trip of each request on the shared pipelined connection (see
    /// ``RedisCommandObserver``). Default: `nil` (nothing is timed).
    public var commandObserver: RedisCommandObserver?

    /// Creates options; every parameter has the default documented on its property.
    public init(
        connection: RedisConnectionOptions = .init(), poolSize: Int = 8, poolWaitTimeout: Duration = .seconds(5),
        commandObserver: RedisCommandObserver? = nil
    ) {
        self.connection = connection
        self.poolSize = poolSize
        self.poolWaitTimeout = poolWaitTimeout
        self.commandObserver = commandObserver
    }
}

/// A thread-safe Redis client with an async/await surface: one server, a master that Sentinel
/// names, or a Redis Cluster (see ``RedisEndpoint``).
///
/// **Threading model:** no Redis I/O ever runs on Swift's cooperative thread pool.
/// - Ordinary commands (``send(_:timeout:)`` with the default timeout, ``pipeline(_:)``, scripts)
///   share one pipelined connection per server: the calling task writes its request without
///   blocking and suspends; the connection's I/O thread reads the reply and resumes it
///   (``PipelinedConnection``).
/// - Exclusive work (``withConnection(routingKey:_:)``: transactions, blocking commands such as
///   `BLPOP`, a write and its `WAIT`) and commands with their own timeout run on a bounded pool of
///   dedicated connections, each owned by a worker thread.
/// - Threads that are not in an async context use the `…Blocking` variants, which wait on the pool.
///
/// In a Redis Cluster, each command goes to the node serving its key's slot, with the two paths
/// above per node, and `MOVED`/`ASK` are followed (``ClusterRouter``).
///
/// The client may be shared freely between tasks and threads.
public final class RedisClient: Sendable {
    /// Where the client connects.
    public let endpoint: RedisEndpoint
    /// The options this client was made with.
    public let options: RedisClientOptions
    private let backend: Backend

    /// One server (or the master Sentinel names), or a cluster's nodes.
    private enum Backend: Sendable {
        case server(RedisNodeClient)
        case cluster(ClusterRouter)
    }

    /// Creates a client. No connection is opened until the first command.
    public init(endpoint: RedisEndpoint, options: RedisClientOptions = .init()) {
        self.endpoint = endpoint
        self.options = options
        if case .cluster(let seeds) = endpoint.topology {
            self.backend = .cluster(ClusterRouter(endpoint: endpoint, seeds: seeds, options: options))
        } else {
            self.backend = .server(RedisNodeClient(endpoint: endpoint, options: options))
        }
    }

    /// Creates a client for a Redis URL (see ``RedisEndpoint``).
    public convenience init(url: String, options: RedisClientOptions = .init()) throws {
        self.init(endpoint: try RedisEndpoint(url: url), options: options)
    }

    deinit {
        shutDown()
    }

    /// Stops the client: queued and in-flight commands fail with ``RedisError/closed``; pooled
    /// connections close as their workers finish what they are doing.
    public func shutDown() {
        switch backend {
        case .server(let node): node.shutDown()
        case .cluster(let router): router.shutDown()
        }
    }

    // MARK: - async

    /// Sends one command.
    /// - Parameter timeout: a timeout of its own (a blocking command's); the command then runs on
    ///   a pooled connection. `nil` uses ``RedisConnectionOptions/commandTimeout`` on the shared one.
    /// - Throws: ``RedisError/server(_:)`` for an error reply, or a connection error.
    @discardableResult
    public func send(_ command: RedisCommand, timeout: Duration?? = nil) async throws -> RESPValue {
        if let timeout {
            return try await withConnection(slot: command.hashSlot) { try $0.send(command, timeout: timeout) }
        }
        let reply = try await pipeline([command])[0]
        if case .error(let message) = reply {
            throw RedisError.server(RedisServerError(message: message, command: command.name))
        }
        return reply
    }

    /// Sends one command built from a name and arguments.
    @discardableResult
    public func send(_ name: String, _ arguments: any RedisArgumentConvertible...) async throws -> RESPValue {
        try await send(RedisCommand(name, arguments: arguments))
    }

    /// Sends commands pipelined in one write; error replies come back in place.
    ///
    /// In a Redis Cluster, commands whose keys live on different nodes are sent to each node in
    /// one write, all nodes at once, and their replies come back in the order of `commands`.
    public func pipeline(_ commands: [RedisCommand]) async throws -> [RESPValue] {
        switch backend {
        case .server(let node): return try await node.pipeline(commands)
        case .cluster(let router): return try await router.pipeline(commands)
        }
    }

    /// Runs `body` with exclusive use of one pooled connection, on that connection's worker thread.
    ///
    /// Use it for work that must stay on one connection (`MULTI`/`EXEC`, `WATCH`, a write and its
    /// `WAIT`). The body blocks a worker, so keep it short and never call back into this client from it.
    /// - Parameter routingKey: a key the body touches: in a Redis Cluster the connection is to the
    ///   node serving that key's slot (all keys of one service share a hash tag), and a body that
    ///   fails with `MOVED` or `ASK` runs again on the node named, so it must be safe to run again
    ///   (a redirect comes before any command on that slot ran). Ignored elsewhere.
    public func withConnection<T: Sendable>(
        routingKey: String? = nil, _ body: @escaping @Sendable (RedisConnection) throws -> T
    ) async throws -> T {
        try await withConnection(slot: routingKey.map(HashSlot.of), body)
    }

    private func withConnection<T: Sendable>(slot: Int?, _ body: @escaping @Sendable (RedisConnection) throws -> T)
        async throws -> T
    {
        switch backend {
        case .server(let node): return try await node.withConnection(body)
        case .cluster(let router): return try await router.withConnection(slot: slot, body)
        }
    }

    /// A new connection of its own, for a listener loop that blocks on it (`BLMOVE`): to the
    /// server (or the master Sentinel names), or in a Redis Cluster to the master serving
    /// `routingKey`'s slot (any master for `nil`) after a fresh look at the slot map.
    ///
    /// Blocks while connecting: call it from the loop's own thread, never from an `async` context.
    /// In a cluster, a command on it may be answered `MOVED` or `ASK` once the slot has moved
    /// (``RedisError/isClusterRedirect``): drop the connection and call this again to reach the
    /// slot's new owner (``ReconnectingLoop`` does so after any error).
    /// - Throws: ``RedisError`` when no connection can be made.
    public func dedicatedConnection(routingKey: String?) throws -> RedisConnection {
        switch backend {
        case .server:
            return try RedisConnection(endpoint: endpoint, options: options.connection)
        case .cluster(let router):
            return try router.dedicatedConnection(slot: routingKey.map(HashSlot.of), options: options.connection)
        }
    }

    // MARK: - blocking

    /// Blocking form of ``send(_:timeout:)`` for threads outside Swift concurrency (pooled).
    /// Never call it from an `async` context: it would park a cooperative thread.
    @discardableResult
    public func sendBlocking(_ command: RedisCommand, timeout: Duration?? = nil) throws -> RESPValue {
        try withConnectionBlocking(slot: command.hashSlot) { try $0.send(command, timeout: timeout) }
    }

    /// Blocking form of ``withConnection(routingKey:_:)`` for threads outside Swift concurrency.
    public func withConnectionBlocking<T>(routingKey: String? = nil, _ body: (RedisConnection) throws -> T) throws -> T
    {
        try withConnectionBlocking(slot: routingKey.map(HashSlot.of), body)
    }

    private func withConnectionBlocking<T>(slot: Int?, _ body: (RedisConnection) throws -> T) throws -> T {
        switch backend {
        case .server(let node): return try node.withConnectionBlocking(body)
        case .cluster(let router): return try router.withConnectionBlocking(slot: slot, body)
        }
    }
}
