import Foundation

// @unchecked: `condition` guards the queue and the idle workers; a LockedBox cannot wait on a condition.
/// The threads behind ``RedisClient``: up to `size` worker threads, each owning one
/// ``RedisConnection`` that only it ever touches.
///
/// Jobs wait in one FIFO queue. Workers are started lazily (a CLI that sends three commands
/// starts one thread) and park on a condition variable when idle. A job that cannot start at once
/// gets a deadline timer; when it fires before a worker takes the job, the job fails with
/// ``RedisError/poolTimeout(waited:poolSize:)``.
final class ConnectionWorkers: @unchecked Sendable {
    /// A unit of work; exactly one of `run` or `fail` is called, exactly once.
    struct Job: Sendable {
        let id: UInt64
        let run: @Sendable (WorkerSlot) -> Void
        let fail: @Sendable (any Error) -> Void
    }

    /// One worker's connection, created on first use and re-created by ``RedisConnection`` itself
    /// after failures.
    final class WorkerSlot {
        private let makeConnection: () throws -> RedisConnection
        private var connection: RedisConnection?

        init(makeConnection: @escaping () throws -> RedisConnection) {
            self.makeConnection = makeConnection
        }

        func connected() throws -> RedisConnection {
            if let connection { return connection }
            let made = try makeConnection()
            connection = made
            return made
        }
    }

    private let size: Int
    private let waitTimeout: Duration
    private let makeConnection: @Sendable () throws -> RedisConnection
    private let condition = NSCondition()
    // Guarded by `condition`:
    private var queue: [Job?] = []  // taken jobs are set to nil so their closures are released
    private var queueHead = 0
    private var threads = 0
    private var idle = 0
    private var nextID: UInt64 = 0
    private var isShutDown = false

    init(size: Int, waitTimeout: Duration, makeConnection: @escaping @Sendable () throws -> RedisConnection) {
        precondition(size > 0, "a Redis pool needs at least one connection")
        self.size = size
        self.waitTimeout = waitTimeout
        self.makeConnection = makeConnection
    }

    /// Reserves an identifier for a job (so a cancellation handler can name it before it is queued).
    func makeJobID() -> UInt64 {
        condition.lock()
        defer { condition.unlock() }
        nextID &+= 1
        return nextID
    }

    /// Queues a job, starting a worker if none is idle and the pool is not full.
    func submit(_ job: Job) {
        condition.lock()
        if isShutDown {
            condition.unlock()
            job.fail(RedisError.closed)
            return
        }
        queue.append(job)
        let waiting = queue.count - queueHead
        var mustWait = false
        if waiting > idle {
            if threads < size {
                threads += 1
                startWorker()
            } else {
                mustWait = true
            }
        }
        condition.signal()
        condition.unlock()

        if mustWait {
            let waitTimeout = self.waitTimeout
            let size = self.size
            DispatchQueue.global().asyncAfter(deadline: .now() + waitTimeout.seconds) { [weak self] in
                if let expired = self?.remove(jobID: job.id) {
                    expired.fail(RedisError.poolTimeout(waited: waitTimeout, poolSize: size))
                }
            }
        }
    }

    /// Takes a job out of the queue if no worker has started it yet.
    func remove(jobID: UInt64) -> Job? {
        condition.lock()
        defer { condition.unlock() }
        guard let index = queue[queueHead...].firstIndex(where: { $0?.id == jobID }) else { return nil }
        return queue.remove(at: index)
    }

    /// Fails every queued job with ``RedisError/closed`` and lets the workers exit once they finish
    /// their current job. Their connections close as they exit.
    func shutDown() {
        condition.lock()
        isShutDown = true
        let abandoned = queue[queueHead...]
        queue = []
        queueHead = 0
        condition.broadcast()
        condition.unlock()
        for case let job? in abandoned { job.fail(RedisError.closed) }
    }

    private func startWorker() {
        let thread = Thread { [self] in workerLoop() }
        thread.name = "baton-redis-worker"
        thread.start()
    }

    private func workerLoop() {
        let slot = WorkerSlot(makeConnection: makeConnection)
        while let job = nextJob() {
            job.run(slot)
        }
    }

    private func nextJob() -> Job? {
        condition.lock()
        defer { condition.unlock() }
        while queueHead == queue.count {
            if isShutDown {
                threads -= 1
                return nil
            }
            idle += 1
            condition.wait()
            idle -= 1
        }
        let job = queue[queueHead]
        queue[queueHead] = nil
        queueHead += 1
        // Compact now and then so the array does not grow without bound.
        if queueHead > 64 && queueHead * 2 > queue.count {
            queue.removeFirst(queueHead)
            queueHead = 0
        }
        return job
    }
}
