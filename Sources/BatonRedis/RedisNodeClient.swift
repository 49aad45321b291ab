import Foundation

/// The connections to one server (or to the master that Sentinel names): a pipelined connection
/// that every task shares for ordinary commands, and a bounded pool of dedicated connections for
/// exclusive work (transactions, blocking commands, a write and its `WAIT`).
///
/// ``RedisClient`` holds one for a single server or a Sentinel master, and one per node for a
/// Redis Cluster.
final class RedisNodeClient: Sendable {
    /// The server (or Sentinel master) these connections go to.
    let endpoint: RedisEndpoint
    private let pipelined: PipelinedConnection
    private let workers: ConnectionWorkers

    init(endpoint: RedisEndpoint, options: RedisClientOptions) {
        self.endpoint = endpoint
        let connectionOptions = options.connection
        self.pipelined = PipelinedConnection(
            endpoint: endpoint, options: connectionOptions, observer: options.commandObserver)
        self.workers = ConnectionWorkers(size: options.poolSize, waitTimeout: options.poolWaitTimeout) {
            try RedisConnection(endpoint: endpoint, options: connectionOptions)
        }
    }

    deinit {
        shutDown()
    }

    /// Stops both paths: queued and in-flight work fails with ``RedisError/closed``.
    func shutDown() {
        pipelined.shutDown()
        workers.shutDown()
    }

    /// Sends commands on the shared pipelined connection; replies in order, error replies in place.
    func pipeline(_ commands: [RedisCommand]) async throws -> [RESPValue] {
        guard !commands.isEmpty else { return [] }
        return try await pipelined.send(commands)
    }

    /// Runs `body` with exclusive use of one pooled connection, on that connection's worker thread.
    func withConnection<T: Sendable>(_ body: @escaping @Sendable (RedisConnection) throws -> T) async throws -> T {
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

    /// Blocking form of ``withConnection(_:)`` for threads outside Swift concurrency.
    func withConnectionBlocking<T>(_ body: (RedisConnection) throws -> T) throws -> T {
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
