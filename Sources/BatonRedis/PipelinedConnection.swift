import BatonSupport
import Foundation

#if canImport(Glibc)
    import Glibc
#endif

// @unchecked: every mutable field is guarded by `lock`; the I/O thread alone owns `parser` and `buffer`.
/// One connection to one server shared by every task: requests from many tasks are pipelined on
/// it, and one I/O thread reads the replies and resumes each task's continuation directly.
///
/// **Who does what:** a task encodes its command and writes it to the socket itself, under the
/// lock that also appends its continuation to the FIFO of waiters, so the order on the wire is the
/// order of the queue. It never blocks: what the socket does not take at once stays in an outbox
/// that the I/O thread flushes. The I/O thread (`baton-redis-io`) sits in `poll(2)`, parses
/// replies with hiredis's reader and resumes waiters in order. It also connects (through a
/// ``RedisConnection``, so Sentinel discovery, `AUTH`, `SELECT` and `ROLE` are the same as
/// everywhere) whenever a request arrives while there is no connection, and enforces every
/// request's deadline (checked at least every 250 ms).
///
/// **Failures:** a broken connection, a protocol error or a reply overdue by its deadline fails
/// every request in flight (``RedisError/connectionLost(address:command:reason:)`` or
/// ``RedisError/timeout(address:operation:after:)``: they may or may not have run and are never
/// sent again) and drops the socket; the next request connects afresh. A `READONLY` reply from a
/// Sentinel-found master drops the socket too, so that the next request finds the new master.
///
/// Only commands that answer promptly belong here: a blocking command (`BLMOVE`, `WAIT`) would
/// hold up every request behind it, so those go to the pool (``RedisClient/withConnection(routingKey:_:)``).
final class PipelinedConnection: @unchecked Sendable {
    /// A task waiting for `expected` replies (one per command it sent, in order).
    private struct Waiter {
        let expected: Int
        var replies: [RESPValue]
        let deadline: ContinuousClock.Instant?
        /// When it was queued; only with an observer (a clock read saved otherwise).
        let started: ContinuousClock.Instant?
        let command: String
        let resume: @Sendable (Result<[RESPValue], any Error>) -> Void
    }

    private enum Phase {
        case disconnected, connecting, connected, shutDown
    }

    let endpoint: RedisEndpoint
    private let options: RedisConnectionOptions
    private let observer: RedisCommandObserver?
    private let lock = NSLock()
    /// A pipe whose read end is in the I/O thread's `poll(2)`: a byte written wakes it.
    private let wakePipe: (read: Int32, write: Int32)
    // Guarded by `lock`:
    private var phase = Phase.disconnected
    private var connection: RedisConnection?
    private var outbox: [UInt8] = []
    private var waiters: [Waiter] = []
    private var waitersHead = 0
    private var threadStarted = false
    /// Whether the current connection has delivered a reply yet (see ``SocketFailure/redisError``).
    private var hasReceivedReply = false
    // The I/O thread's own:
    private var parser = RESPReader()
    private let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 64 * 1024, alignment: 1)

    init(endpoint: RedisEndpoint, options: RedisConnectionOptions, observer: RedisCommandObserver? = nil) {
        self.endpoint = endpoint
        self.options = options
        self.observer = observer
        var ends: [Int32] = [-1, -1]
        if pipe(&ends) == 0 {
            for end in ends {
                _ = fcntl(end, F_SETFL, fcntl(end, F_GETFL) | O_NONBLOCK)
                _ = fcntl(end, F_SETFD, FD_CLOEXEC)
            }
        }
        self.wakePipe = (ends[0], ends[1])
    }

    deinit {
        buffer.deallocate()
        Glibc.close(wakePipe.read)
        Glibc.close(wakePipe.write)
    }

    /// Sends `commands` in one write and returns their replies in order (error replies in place).
    func send(_ commands: [RedisCommand]) async throws -> [RESPValue] {
        var request: [UInt8] = []
        for command in commands { command.encode(into: &request) }
        let timeout = options.commandTimeout
        let now = timeout != nil || observer != nil ? ContinuousClock.now : nil
        // Unsafe rather than checked: the queue resumes each waiter exactly once (on a reply, a
        // failure, a deadline or shut-down), and this is the client's hottest path.
        return try await withUnsafeThrowingContinuation { continuation in
            let waiter = Waiter(
                expected: commands.count, replies: [],
                deadline: timeout.flatMap { timeout in now.map { $0 + timeout } },
                started: observer == nil ? nil : now, command: commands[0].name,
                resume: { continuation.resume(with: $0) })
            if let refusal = enqueue(waiter, request: request) { continuation.resume(throwing: refusal) }
        }
    }

    /// Fails every waiting request with ``RedisError/closed`` and ends the I/O thread.
    func shutDown() {
        let abandoned = lock.withLock { () -> [Waiter] in
            phase = .shutDown
            connection = nil
            return takeAllWaiters()
        }
        wakeThread()
        abandoned.forEach { $0.resume(.failure(RedisError.closed)) }
    }

    // MARK: - The caller's side

    /// Queues a request and writes it when the connection is up; returns an error to fail it with
    /// at once instead.
    private func enqueue(_ waiter: Waiter, request: [UInt8]) -> RedisError? {
        var mustWake = false
        let refusal = lock.withLock { () -> RedisError? in
            if phase == .shutDown { return .closed }
            if !threadStarted {
                threadStarted = true
                let thread = Thread { [self] in ioLoop() }
                thread.name = "baton-redis-io"
                thread.start()
            }
            let wasIdle = waitersHead == waiters.count
            waiters.append(waiter)
            if phase == .connected, let connection, let socket = connection.connectedSocket {
                // An idle socket with something to read was closed by the server (or is out of
                // step); one from before a failover follows an old master. Either way: reconnect.
                if wasIdle && (socket.isClosedOrOutOfStep() || connection.followsAnOldMaster) {
                    self.connection = nil
                    phase = .disconnected
                    outbox = request
                    mustWake = true
                    return nil
                }
                if outbox.isEmpty {
                    let written = (try? request.withUnsafeBytes { try socket.writeAvailable($0) }) ?? 0
                    if written < request.count {
                        outbox.append(contentsOf: request[written...])
                        mustWake = true
                    }
                } else {
                    outbox.append(contentsOf: request)
                }
            } else {
                outbox.append(contentsOf: request)
                mustWake = phase == .disconnected
            }
            return nil
        }
        if mustWake { wakeThread() }
        return refusal
    }

    private func wakeThread() {
        var byte: UInt8 = 1
        _ = Glibc.write(wakePipe.write, &byte, 1)
    }

    // MARK: - The I/O thread

    private func ioLoop() {
        while true {
            let step = lock.withLock { () -> Phase in
                if phase == .disconnected && waitersHead < waiters.count { phase = .connecting }
                return phase
            }
            switch step {
            case .shutDown:
                return
            case .connecting:
                connect()
            case .disconnected, .connected:
                pollOnce()
            }
        }
    }

    /// Connects (blocking, on this thread), then flushes what queued up meanwhile.
    private func connect() {
        do {
            let made = try RedisConnection(endpoint: endpoint, options: options)
            parser = RESPReader()
            lock.withLock {
                guard phase == .connecting else { return }
                connection = made
                phase = .connected
                hasReceivedReply = false
            }
            flushOutbox()
        } catch {
            let failed = lock.withLock { () -> [Waiter] in
                guard phase == .connecting else { return [] }
                phase = .disconnected
                outbox = []
                return takeAllWaiters()
            }
            failed.forEach { $0.resume(.failure(error)) }
        }
    }

    /// One `poll(2)` over the socket and the wake-up descriptor, then whatever it reported.
    private func pollOnce() {
        let (socket, wantsWrite, nextDeadline, buffered) = lock.withLock {
            let socket = phase == .connected ? connection?.connectedSocket : nil
            return (
                socket, !outbox.isEmpty, waiters[waitersHead...].compactMap(\.deadline).min(),
                socket?.hasBufferedInput ?? false
            )
        }
        if let socket, buffered {
            readReplies(from: socket)
            return
        }
        var entries = [pollfd(fd: wakePipe.read, events: Int16(POLLIN), revents: 0)]
        if let socket {
            entries.append(
                pollfd(fd: socket.fileDescriptor, events: Int16(POLLIN) | (wantsWrite ? Int16(POLLOUT) : 0), revents: 0)
            )
        }
        var wait: Int64 = 250
        if let nextDeadline { wait = min(wait, max(0, (nextDeadline - ContinuousClock.now).milliseconds + 1)) }
        let ready = poll(&entries, nfds_t(entries.count), Int32(wait))
        if ready < 0 && errno != EINTR { Thread.sleepPrecisely(.milliseconds(10)) }
        if entries[0].revents != 0 {
            var drained = [UInt8](repeating: 0, count: 64)
            while Glibc.read(wakePipe.read, &drained, drained.count) > 0 {}
        }
        if let socket, entries.count > 1 {
            if entries[1].revents & Int16(POLLOUT) != 0 { flushOutbox() }
            if entries[1].revents & ~Int16(POLLOUT) != 0 { readReplies(from: socket) }
        }
        failOverdueRequests()
    }

    private func flushOutbox() {
        let failure = lock.withLock { () -> (any Error)? in
            guard phase == .connected, let socket = connection?.connectedSocket, !outbox.isEmpty else { return nil }
            do {
                let written = try outbox.withUnsafeBytes { try socket.writeAvailable($0) }
                outbox.removeFirst(written)
                return nil
            } catch {
                return error
            }
        }
        if let failure { dropConnection(reason: failure) }
    }

    /// Reads what arrived, parses every complete reply and resumes the waiters they complete.
    private func readReplies(from socket: RedisSocket) {
        var completed: [(Waiter, [RESPValue])] = []
        var failure: (any Error)?
        var sawReadOnly = false
        do {
            // Under the lock: TLS sessions must not read while a task writes. A socket a task
            // has replaced since the poll (closed or out of step) is read no more: whatever it
            // still holds must never answer the requests queued for the next connection.
            let count = try lock.withLock { () throws -> Int in
                guard connection?.connectedSocket === socket else { return 0 }
                return try socket.readAvailable(into: buffer)
            }
            if count == 0 { return }
            try parser.feed(UnsafeRawBufferPointer(rebasing: buffer[..<count]))
            lock.withLock {
                while let reply = try? parser.next() {
                    guard waitersHead < waiters.count else {
                        failure = RedisError.protocolError(
                            address: connection?.serverAddress ?? endpoint.address, detail: "a reply nobody asked for")
                        return
                    }
                    hasReceivedReply = true
                    waiters[waitersHead].replies.append(reply)
                    sawReadOnly = sawReadOnly || reply.isReadOnlyError
                    if waiters[waitersHead].replies.count == waiters[waitersHead].expected {
                        completed.append((waiters[waitersHead], waiters[waitersHead].replies))
                        advanceHead()
                    }
                }
            }
            // A parser in an error state shows it on the next call.
            _ = try parser.next().map { _ in
                failure = RedisError.protocolError(address: endpoint.address, detail: "replies out of step")
            }
        } catch let error as ProtocolViolation {
            failure = RedisError.protocolError(address: endpoint.address, detail: error.detail)
        } catch {
            failure = error
        }
        for (waiter, replies) in completed { waiter.resume(.success(replies)) }
        if let observer, !completed.isEmpty {
            let now = ContinuousClock.now
            for (waiter, _) in completed { waiter.started.map { observer(waiter.command, now - $0) } }
        }
        if let failure {
            dropConnection(reason: failure)
        } else if sawReadOnly, case .sentinel = endpoint.topology {
            let (address, epoch) = lock.withLock { (connection?.serverAddress, connection?.masterEpochFollowed) }
            if let address { SentinelMonitor.shared(for: endpoint).masterMayHaveMoved(from: address, epoch: epoch) }
            dropConnection(reason: nil)
        }
    }

    /// Fails every request in flight after a socket failure (`reason`), or after a `READONLY`
    /// (`nil`: the server is no longer the master), and forgets the socket.
    private func dropConnection(reason: (any Error)?) {
        let (failed, address, beforeFirstReply) = lock.withLock { () -> ([Waiter], String, Bool) in
            let address = connection?.serverAddress ?? endpoint.address
            guard phase == .connected else { return ([], address, false) }
            connection = nil
            phase = .disconnected
            outbox = []
            return (takeAllWaiters(), address, !hasReceivedReply)
        }
        for waiter in failed {
            let error: RedisError
            switch reason {
            case let redisError as RedisError:
                error = redisError
            case let failure as SocketFailure:
                error = failure.redisError(
                    address: address, command: waiter.command, operation: "the reply to \(waiter.command)",
                    limit: options.commandTimeout, beforeFirstReply: beforeFirstReply, isTLS: endpoint.tls != nil)
            default:
                error = .connectionLost(
                    address: address, command: waiter.command,
                    reason: reason.map { "\($0)" } ?? "the server is no longer the master")
            }
            waiter.resume(.failure(error))
        }
    }

    /// Fails everything in flight when the oldest request is past its deadline: its reply may
    /// still come, and would then be read as the answer to the next one.
    private func failOverdueRequests() {
        let now = ContinuousClock.now
        let (failed, overdueCommand, address) = lock.withLock { () -> ([Waiter], String, String) in
            guard waitersHead < waiters.count, let deadline = waiters[waitersHead].deadline, deadline <= now else {
                return ([], "", "")
            }
            let overdue = waiters[waitersHead].command
            let address = connection?.serverAddress ?? endpoint.address
            connection = nil
            if phase != .shutDown { phase = .disconnected }
            outbox = []
            return (takeAllWaiters(), overdue, address)
        }
        let limit = options.commandTimeout ?? .zero
        for (index, waiter) in failed.enumerated() {
            let operation =
                index == 0
                ? "the reply to \(waiter.command)" : "the reply to \(waiter.command) (queued behind \(overdueCommand))"
            waiter.resume(.failure(RedisError.timeout(address: address, operation: operation, after: limit)))
        }
    }

    // MARK: - The queue (call with the lock held)

    private func advanceHead() {
        waitersHead += 1
        if waitersHead == waiters.count {
            waiters.removeAll(keepingCapacity: true)
            waitersHead = 0
        } else if waitersHead > 64 && waitersHead * 2 > waiters.count {
            waiters.removeFirst(waitersHead)
            waitersHead = 0
        }
    }

    private func takeAllWaiters() -> [Waiter] {
        let taken = Array(waiters[waitersHead...])
        waiters.removeAll()
        waitersHead = 0
        return taken
    }
}
