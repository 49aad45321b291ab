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

    /// Creates options; every parameter has the default documented on its property.
    public init(
        connection: RedisConnectionOptions = .init(), poolSize: Int = 8, poolWaitTimeout: Duration = .seconds(5)
    ) {
        self.connection = connection
        self.poolSize = poolSize
        self.poolWaitTimeout = poolWaitTimeout
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
/// The client may be shared freely between tasks and threads.
public final class RedisClient: Sendable {
    /// Where the client connects.
    public let endpoint: RedisEndpoint
    /// The options this client was made with.
    public let options: RedisClientOptions
    private let node: RedisNodeClient

    /// Creates a client. No connection is opened until the first command.
    public init(endpoint: RedisEndpoint, options: RedisClientOptions = .init()) {
        self.endpoint = endpoint
        self.options = options
        self.node = RedisNodeClient(endpoint: endpoint, options: options)
    }

    /// Creates a client for a Redis URL (see ``RedisEndpoint``).
    public convenience init(url: String, options: RedisClientOptions = .init()) throws {
        self.init(endpoint: try RedisEndpoint(url: url), options: options)
    }

    deinit {
        node.shutDown()
    }

    /// Stops the client: queued and in-flight commands fail with ``RedisError/closed``; pooled
    /// connections close as their workers finish what they are doing.
    public func shutDown() {
        node.shutDown()
    }

    // MARK: - async

    /// Sends one command.
    /// - Parameter timeout: a timeout of its own (a blocking command's); the command then runs on
    ///   a pooled connection. `nil` uses ``RedisConnectionOptions/commandTimeout`` on the shared one.
    /// - Throws: ``RedisError/server(_:)`` for an error reply, or a connection error.
    @discardableResult
    public func send(_ command: RedisCommand, timeout: Duration?? = nil) async throws -> RESPValue {
        if let timeout {
            return try await withConnection { try $0.send(command, timeout: timeout) }
        }
        let reply = try await node.pipeline([command])[0]
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
    public func pipeline(_ commands: [RedisCommand]) async throws -> [RESPValue] {
        try await node.pipeline(commands)
    }

    /// Runs `body` with exclusive use of one pooled connection, on that connection's worker thread.
    ///
    /// Use it for work that must stay on one connection (`MULTI`/`EXEC`, `WATCH`, a write and its
    /// `WAIT`). The body blocks a worker, so keep it short and never call back into this client from it.
    /// - Parameter routingKey: a key the body touches: in a Redis Cluster the connection is to the
    ///   node serving that key's slot (all keys of one service share a hash tag). Ignored elsewhere.
    public func withConnection<T: Sendable>(
        routingKey: String? = nil, _ body: @escaping @Sendable (RedisConnection) throws -> T
    ) async throws -> T {
        try await node.withConnection(body)
    }

    // MARK: - blocking

    /// Blocking form of ``send(_:timeout:)`` for threads outside Swift concurrency (pooled).
    /// Never call it from an `async` context: it would park a cooperative thread.
    @discardableResult
    public func sendBlocking(_ command: RedisCommand, timeout: Duration?? = nil) throws -> RESPValue {
        try withConnectionBlocking { try $0.send(command, timeout: timeout) }
    }

    /// Blocking form of ``withConnection(routingKey:_:)`` for threads outside Swift concurrency.
    public func withConnectionBlocking<T>(routingKey: String? = nil, _ body: (RedisConnection) throws -> T) throws -> T
    {
        try node.withConnectionBlocking(body)
    }
}
