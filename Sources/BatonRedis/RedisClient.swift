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

/// A thread-safe Redis client with a bounded connection pool and an async/await surface.
///
/// **Threading model:** hiredis calls block, so they never run on Swift's cooperative thread pool.
/// Each pooled connection is owned by its own worker thread (see `ConnectionWorkers`); an `async`
/// call queues a job for the workers and suspends on a continuation, freeing its cooperative
/// thread until the reply arrives. Threads that are not in an async context use the `…Blocking`
/// variants, which wait on the same queue.
///
/// The client may be shared freely between tasks and threads.
public final class RedisClient: Sendable {
    /// The server this client talks to.
    public let endpoint: RedisEndpoint
    /// The options this client was made with.
    public let options: RedisClientOptions
    private let workers: ConnectionWorkers

    /// Creates a client. No connection is opened until the first command.
    public init(endpoint: RedisEndpoint, options: RedisClientOptions = .init()) {
        self.endpoint = endpoint
        self.options = options
        let connectionOptions = options.connection
        self.workers = ConnectionWorkers(size: options.poolSize, waitTimeout: options.poolWaitTimeout) {
            try RedisConnection(endpoint: endpoint, options: connectionOptions)
        }
    }

    /// Creates a client for a Redis URL (see ``RedisEndpoint``).
    public convenience init(url: String, options: RedisClientOptions = .init()) throws {
        self.init(endpoint: try RedisEndpoint(url: url), options: options)
    }

    deinit {
        workers.shutDown()
    }

    /// Stops the client: queued commands fail with ``RedisError/closed``; connections close as
    /// their workers finish what they are doing.
    public func shutDown() {
        workers.shutDown()
    }

    // MARK: - async

    /// Sends one command on a pooled connection.
    /// - Throws: ``RedisError/server(_:)`` for an error reply, or a connection or pool error.
    @discardableResult
    public func send(_ command: RedisCommand, timeout: Duration?? = nil) async throws -> RESPValue {
        try await withConnection { try $0.send(command, timeout: timeout) }
    }

    /// Sends one command built from a name and arguments.
    @discardableResult
    public func send(_ name: String, _ arguments: any RedisArgumentConvertible...) async throws -> RESPValue {
        try await send(RedisCommand(name, arguments: arguments))
    }

    /// Sends commands pipelined on one connection; error replies come back in place.
    public func pipeline(_ commands: [RedisCommand]) async throws -> [RESPValue] {
        try await withConnection { try $0.pipeline(commands) }
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
        let id = workers.makeJobID()
        return try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<T, any Error>) in
                workers.submit(
                    .init(
                        id: id,
                        run: { slot in continuation.resume(with: Result { try body(slot.connected()) }) },
                        fail: { continuation.resume(throwing: $0) }
                    ))
            }
        } onCancel: {
            workers.remove(jobID: id)?.fail(CancellationError())
        }
    }

    // MARK: - blocking

    /// Blocking form of ``send(_:timeout:)`` for threads outside Swift concurrency.
    /// Never call it from an `async` context: it would park a cooperative thread.
    @discardableResult
    public func sendBlocking(_ command: RedisCommand, timeout: Duration?? = nil) throws -> RESPValue {
        try withConnectionBlocking { try $0.send(command, timeout: timeout) }
    }

    /// Blocking form of ``withConnection(_:)`` for threads outside Swift concurrency.
    public func withConnectionBlocking<T>(_ body: (RedisConnection) throws -> T) throws -> T {
        let done = DispatchSemaphore(value: 0)
        let outcome = UncheckedBox<Result<T, any Error>?>(nil)
        withoutActuallyEscaping(body) { escapingBody in
            // The caller blocks until the job has run or failed, so the non-Sendable body and
            // result never outlive this frame nor are touched by two threads at once. The box is
            // emptied before returning: the body must not outlive `withoutActuallyEscaping`.
            let unsafeBody = UncheckedBox<((RedisConnection) throws -> T)?>(escapingBody)
            workers.submit(
                .init(
                    id: workers.makeJobID(),
                    run: { slot in
                        outcome.value = Result { try unsafeBody.value!(slot.connected()) }
                        done.signal()
                    },
                    fail: { error in
                        outcome.value = .failure(error)
                        done.signal()
                    }
                ))
            done.wait()
            unsafeBody.value = nil
        }
        return try outcome.value!.get()
    }
}
