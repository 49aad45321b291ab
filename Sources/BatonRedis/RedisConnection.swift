import BatonSupport
internal import CHiredis
import Foundation

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

// @unchecked: one owner at a time (hiredis contexts are not thread-safe); Sendable only to hand it over.
/// One blocking connection to Redis over hiredis: the lowest layer of the client.
///
/// **Ownership:** a `RedisConnection` owns its `redisContext*` and frees it in `deinit`. hiredis
/// contexts are not thread-safe, so a connection must have one owner at a time: one thread, or one
/// worker of ``RedisClient``. It is `@unchecked Sendable` only so that ownership can be handed over
/// (for example into a pool worker); it must never be used from two threads at once.
///
/// Commands go out as argument vectors (binary-safe). Every `redisReply` is converted and freed
/// before a call returns, on every path. After any I/O error, timeout or protocol error the context
/// is discarded; the next call reconnects (with ``ReconnectPolicy``) before sending anything, and
/// the command that was in flight is never sent again.
public final class RedisConnection: @unchecked Sendable {
    /// The server this connection talks to.
    public let endpoint: RedisEndpoint
    /// The options this connection was made with.
    public let options: RedisConnectionOptions
    /// Increases by one every time a new underlying connection is established (1 after the first
    /// connect). Callers that keep per-connection state (subscriptions, script caches) compare it.
    public private(set) var generation = 0

    private var context: UnsafeMutablePointer<redisContext>?
    private var appliedTimeout: Duration?
    /// Set by ``RedisSubscription``: a subscribed socket is readable whenever a message waits, so
    /// readability no longer means "closed by the server".
    var isInSubscribeMode = false

    /// Connects now, retrying per `options.reconnect` if the server is not reachable yet.
    /// - Throws: ``RedisError`` (refused, timeout, authentication failure, ...).
    public init(endpoint: RedisEndpoint, options: RedisConnectionOptions = .init()) throws {
        self.endpoint = endpoint
        self.options = options
        try ensureConnected()
    }

    /// Connects to the server named by a Redis URL.
    public convenience init(url: String, options: RedisConnectionOptions = .init()) throws {
        try self.init(endpoint: RedisEndpoint(url: url), options: options)
    }

    deinit {
        if let context { redisFree(context) }
    }

    /// Whether an underlying connection is currently open (it may still turn out to be dead).
    public var isConnected: Bool { context != nil }

    /// Closes the underlying connection; the next command reconnects.
    public func close() {
        if let context { redisFree(context) }
        context = nil
    }

    // MARK: - Commands

    /// Sends one command and waits for its reply.
    ///
    /// - Parameters:
    ///   - command: the argument vector.
    ///   - timeout: overrides ``RedisConnectionOptions/commandTimeout`` for this call (for blocking
    ///     commands such as `BLPOP`); `.some(nil)` waits forever.
    /// - Returns: the reply; an error reply is thrown, never returned.
    /// - Throws: ``RedisError/server(_:)`` for an error reply, or a connection error.
    @discardableResult
    public func send(_ command: RedisCommand, timeout: Duration?? = nil) throws -> RESPValue {
        let reply = try exchange([command], timeout: timeout)[0]
        if case .error(let message) = reply {
            throw RedisError.server(RedisServerError(message: message, command: command.name))
        }
        return reply
    }

    /// Sends all commands in one write and then reads one reply per command (pipelining).
    ///
    /// Error replies are returned in place as ``RESPValue/error(_:)`` so the caller can see which
    /// command failed; connection failures throw.
    public func pipeline(_ commands: [RedisCommand], timeout: Duration?? = nil) throws -> [RESPValue] {
        guard !commands.isEmpty else { return [] }
        return try exchange(commands, timeout: timeout)
    }

    private func exchange(_ commands: [RedisCommand], timeout: Duration??) throws -> [RESPValue] {
        let context = try ensureConnected()
        applyTimeout(timeout ?? options.commandTimeout, to: context)
        for command in commands where Self.append(command, to: context) != REDIS_OK {
            throw failure(of: context, command: command.name, operation: "writing \(command.name)")
        }
        var replies: [RESPValue] = []
        replies.reserveCapacity(commands.count)
        for command in commands {
            var raw: UnsafeMutableRawPointer?
            guard redisGetReply(context, &raw) == REDIS_OK, let raw else {
                throw failure(of: context, command: command.name, operation: "reading the reply to \(command.name)")
            }
            defer { freeReplyObject(raw) }
            replies.append(Self.value(of: raw.assumingMemoryBound(to: redisReply.self)))
        }
        return replies
    }

    // MARK: - Pub/sub support (used by RedisSubscription)

    /// Queues commands and flushes them without reading replies (subscribe-mode writes).
    func write(_ commands: [RedisCommand]) throws {
        let context = try ensureConnected()
        for command in commands where Self.append(command, to: context) != REDIS_OK {
            throw failure(of: context, command: command.name, operation: "writing \(command.name)")
        }
        var done: Int32 = 0
        while done == 0 {
            guard redisBufferWrite(context, &done) == REDIS_OK else {
                throw failure(of: context, command: commands.first?.name ?? "", operation: "writing")
            }
        }
    }

    /// Waits up to `timeout` for the next reply without breaking the connection on expiry.
    ///
    /// Uses `poll(2)` rather than the socket timeout: a socket timeout leaves hiredis's context in
    /// an error state, while an idle subscriber waiting for messages is perfectly healthy.
    /// - Returns: the reply, or `nil` when the deadline passes first.
    func readReply(within timeout: Duration) throws -> RESPValue? {
        guard let context else {
            throw RedisError.connectionLost(address: endpoint.address, command: "SUBSCRIBE", reason: "not connected")
        }
        let deadline = ContinuousClock.now + timeout
        while true {
            var raw: UnsafeMutableRawPointer?
            guard redisGetReplyFromReader(context, &raw) == REDIS_OK else {
                throw failure(of: context, command: "SUBSCRIBE", operation: "parsing a pushed message")
            }
            if let raw {
                defer { freeReplyObject(raw) }
                return Self.value(of: raw.assumingMemoryBound(to: redisReply.self))
            }
            let remaining = deadline - ContinuousClock.now
            if remaining <= .zero { return nil }
            var descriptor = pollfd(fd: context.pointee.fd, events: Int16(POLLIN), revents: 0)
            let ready = poll(&descriptor, 1, Int32(clamping: max(1, remaining.milliseconds)))
            if ready < 0 {
                if errno == EINTR { continue }
                throw failure(of: context, command: "SUBSCRIBE", operation: "waiting for a message")
            }
            if ready == 0 { continue }
            guard redisBufferRead(context) == REDIS_OK else {
                throw failure(of: context, command: "SUBSCRIBE", operation: "reading a pushed message")
            }
        }
    }

    // MARK: - Connecting

    /// Returns a live context, connecting or reconnecting first when there is none or the idle
    /// one was closed by the server (detected with a zero-timeout `poll`, before anything is sent).
    @discardableResult
    func ensureConnected() throws -> UnsafeMutablePointer<redisContext> {
        if let context {
            if isInSubscribeMode || !Self.isClosedByPeer(context) { return context }
            close()
        }
        let policy = options.reconnect
        let start = ContinuousClock.now
        var attempt = 0
        while true {
            do {
                let context = try connectOnce()
                self.context = context
                generation += 1
                return context
            } catch let error as RedisError where Self.isWorthRetrying(error) {
                let pause = policy.delay(beforeAttempt: attempt)
                if ContinuousClock.now - start + pause > policy.giveUpAfter { throw error }
                attempt += 1
                Thread.sleepPrecisely(pause)
            }
        }
    }

    private static func isWorthRetrying(_ error: RedisError) -> Bool {
        switch error {
        case .connectionRefused, .connectionFailed, .timeout: return true
        case .server(let server): return server.code == "LOADING"
        default: return false
        }
    }

    private func connectOnce() throws -> UnsafeMutablePointer<redisContext> {
        let connectTimeout = timeval(options.connectTimeout)
        let created: UnsafeMutablePointer<redisContext>?
        switch endpoint.transport {
        case .tcp(let host, let port):
            created = redisConnectWithTimeout(host, Int32(port), connectTimeout)
        case .unix(let path):
            created = redisConnectUnixWithTimeout(path, connectTimeout)
        }
        let connectErrno = errno  // hiredis reports a failed connect(2) or poll(2) as REDIS_ERR_IO + errno
        guard let context = created else {
            throw RedisError.connectionFailed(address: endpoint.address, reason: "hiredis could not allocate a context")
        }
        if context.pointee.err != 0 {
            let error = connectFailure(
                kind: context.pointee.err, errno: connectErrno, text: Self.errorText(of: context))
            redisFree(context)
            throw error
        }
        if options.keepAlive, case .tcp = endpoint.transport {
            _ = redisEnableKeepAlive(context)
        }
        appliedTimeout = nil
        applyTimeout(options.commandTimeout, to: context, force: true)

        var handshake: [RedisCommand] = []
        if let password = endpoint.password {
            handshake.append(
                endpoint.username.map { RedisCommand("AUTH", $0, password) } ?? RedisCommand("AUTH", password))
        }
        if endpoint.database != 0 {
            handshake.append(RedisCommand("SELECT", endpoint.database))
        }
        for command in handshake {
            var raw: UnsafeMutableRawPointer?
            guard Self.append(command, to: context) == REDIS_OK, redisGetReply(context, &raw) == REDIS_OK, let raw
            else {
                let error = describeFailure(
                    of: context, command: command.name, operation: "the \(command.name) handshake")
                redisFree(context)
                throw error
            }
            let reply = Self.value(of: raw.assumingMemoryBound(to: redisReply.self))
            freeReplyObject(raw)
            if case .error(let message) = reply {
                redisFree(context)
                throw RedisError.server(RedisServerError(message: message, command: command.name))
            }
        }
        return context
    }

    private func applyTimeout(_ timeout: Duration?, to context: UnsafeMutablePointer<redisContext>, force: Bool = false)
    {
        guard force || timeout != appliedTimeout else { return }
        // A zero timeval means "block forever" to setsockopt(SO_RCVTIMEO).
        _ = redisSetTimeout(context, timeout.map(timeval.init) ?? timeval(tv_sec: 0, tv_usec: 0))
        appliedTimeout = timeout
    }

    // MARK: - Errors

    /// Classifies a failed connect by hiredis's error kind and the `errno` it left, never by the
    /// wording of `errstr` (which is only quoted).
    private func connectFailure(kind: Int32, errno code: Int32, text: String) -> RedisError {
        guard kind == REDIS_ERR_IO else {
            // REDIS_ERR_OTHER: name resolution failed, or no address could be used.
            return .connectionFailed(address: endpoint.address, reason: text)
        }
        switch code {
        case ECONNREFUSED:
            return .connectionRefused(address: endpoint.address)
        case ETIMEDOUT, EINPROGRESS, EAGAIN:
            // hiredis sets ETIMEDOUT when its poll(2) for the connect expires.
            return .timeout(address: endpoint.address, operation: "connect", after: options.connectTimeout)
        default:
            // EHOSTUNREACH, ENETUNREACH, ENOENT (no socket file), EACCES, ECONNRESET, ...
            return .connectionFailed(
                address: endpoint.address, reason: text.isEmpty ? String(cString: strerror(code)) : text)
        }
    }

    /// Turns hiredis's error state into a ``RedisError`` and discards the (now unusable) context.
    /// - Parameter code: `errno` as the failed hiredis call left it; the default argument reads it
    ///   at the call site, right after that call, before anything else can change it.
    private func failure(
        of context: UnsafeMutablePointer<redisContext>, command: String, operation: String,
        errno code: Int32 = errno
    ) -> RedisError {
        let error = describeFailure(of: context, command: command, operation: operation, errno: code)
        if self.context == context { close() }
        return error
    }

    private func describeFailure(
        of context: UnsafeMutablePointer<redisContext>, command: String, operation: String,
        errno code: Int32 = errno
    ) -> RedisError {
        let text = Self.errorText(of: context)
        switch context.pointee.err {
        case REDIS_ERR_IO where code == EAGAIN || code == EWOULDBLOCK:
            // SO_RCVTIMEO/SO_SNDTIMEO expired: the command timeout.
            return .timeout(
                address: endpoint.address, operation: operation,
                after: appliedTimeout ?? options.commandTimeout ?? .zero)
        case REDIS_ERR_EOF:
            return .connectionLost(
                address: endpoint.address, command: command, reason: "the server closed the connection")
        case REDIS_ERR_PROTOCOL:
            return .protocolError(address: endpoint.address, detail: text)
        default:
            return .connectionLost(
                address: endpoint.address, command: command, reason: text.isEmpty ? "I/O error" : text)
        }
    }

    private static func errorText(of context: UnsafeMutablePointer<redisContext>) -> String {
        withUnsafeBytes(of: context.pointee.errstr) { buffer in
            let bytes = buffer.prefix { $0 != 0 }
            return String(decoding: bytes, as: UTF8.self)
        }
    }

    /// An idle connection has nothing to read; if the socket is readable, the server closed it
    /// (restart, `CLIENT KILL`, idle timeout) or it is out of sync. Either way it must not be used.
    private static func isClosedByPeer(_ context: UnsafeMutablePointer<redisContext>) -> Bool {
        var descriptor = pollfd(fd: context.pointee.fd, events: Int16(POLLIN), revents: 0)
        return poll(&descriptor, 1, 0) != 0
    }

    // MARK: - hiredis glue

    /// Appends one command to hiredis's output buffer as an argument vector (binary-safe).
    private static func append(_ command: RedisCommand, to context: UnsafeMutablePointer<redisContext>) -> Int32 {
        var flat: [UInt8] = []
        var offsets: [Int] = []
        var lengths: [Int] = []
        offsets.reserveCapacity(command.arguments.count)
        lengths.reserveCapacity(command.arguments.count)
        for argument in command.arguments {
            offsets.append(flat.count)
            lengths.append(argument.count)
            flat.append(contentsOf: argument)
        }
        flat.append(0)  // never an empty buffer, so baseAddress is never nil
        return flat.withUnsafeBufferPointer { buffer in
            let base = UnsafeRawPointer(buffer.baseAddress!).assumingMemoryBound(to: CChar.self)
            var argv: [UnsafePointer<CChar>?] = offsets.map { base + $0 }
            return argv.withUnsafeMutableBufferPointer { argvBuffer in
                lengths.withUnsafeBufferPointer { lengthBuffer in
                    redisAppendCommandArgv(
                        context, Int32(argvBuffer.count), argvBuffer.baseAddress, lengthBuffer.baseAddress)
                }
            }
        }
    }

    /// Copies a hiredis reply tree into a ``RESPValue``. The caller frees the tree.
    static func value(of reply: UnsafeMutablePointer<redisReply>) -> RESPValue {
        let node = reply.pointee
        switch node.type {
        case REDIS_REPLY_STRING:
            return .bulk(bytes(node.str, count: node.len))
        case REDIS_REPLY_STATUS:
            return .status(String(decoding: bytes(node.str, count: node.len), as: UTF8.self))
        case REDIS_REPLY_ERROR:
            return .error(String(decoding: bytes(node.str, count: node.len), as: UTF8.self))
        case REDIS_REPLY_INTEGER:
            return .integer(Int64(node.integer))
        case REDIS_REPLY_ARRAY:
            var elements: [RESPValue] = []
            elements.reserveCapacity(node.elements)
            for index in 0..<node.elements {
                if let child = node.element[index] { elements.append(value(of: child)) } else { elements.append(.null) }
            }
            return .array(elements)
        default:
            return .null
        }
    }

    private static func bytes(_ pointer: UnsafeMutablePointer<CChar>?, count: Int) -> [UInt8] {
        guard let pointer, count > 0 else { return [] }
        return Array(UnsafeRawBufferPointer(start: pointer, count: count))
    }
}

extension timeval {
    init(_ duration: Duration) {
        let micros = max(0, duration.milliseconds * 1000 + (duration.components.attoseconds / 1_000_000_000_000) % 1000)
        self.init(tv_sec: Int(micros / 1_000_000), tv_usec: Int(micros % 1_000_000))
    }
}

extension Thread {
    /// Sleeps the calling (non-cooperative) thread for `duration`.
    static func sleepPrecisely(_ duration: Duration) {
        guard duration > .zero else { return }
        var request = timespec(
            tv_sec: Int(duration.components.seconds), tv_nsec: Int(duration.components.attoseconds / 1_000_000_000))
        var remaining = timespec()
        while nanosleep(&request, &remaining) != 0 && errno == EINTR { request = remaining }
    }
}
