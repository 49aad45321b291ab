import BatonSupport
import Foundation

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

// @unchecked: one owner at a time (it owns a socket and a parser); Sendable only to hand it over.
/// One blocking connection to one Redis server: the lowest layer of the client.
///
/// **Ownership:** a `RedisConnection` owns its ``RedisSocket`` (plain TCP, Unix or TLS) and the
/// RESP parser (hiredis's `redisReader`) that reads from it. It must have one owner at a time: one
/// thread, or one worker of ``RedisClient``. It is `@unchecked Sendable` only so that ownership can
/// be handed over (for example into a pool worker); it must never be used from two threads at once.
///
/// **Which server:** for a `redis-sentinel://` endpoint, each connect asks the Sentinels for the
/// current master (``SentinelMonitor``) and checks with `ROLE` that it is one; a `READONLY`
/// reply, or a failover announced by a Sentinel, drops the connection so that the next command
/// follows the new master. A `redis-cluster://` endpoint connects to its first reachable seed (the
/// cluster's router makes connections to each node with ``RedisEndpoint/server(at:)``).
///
/// Commands go out as RESP arrays (binary-safe). After any I/O error, timeout or protocol error
/// the socket is discarded; the next call reconnects (with ``ReconnectPolicy``) before sending
/// anything, and the command that was in flight is never sent again.
public final class RedisConnection: @unchecked Sendable {
    /// The endpoint this connection was made for (possibly a Sentinel or Cluster one).
    public let endpoint: RedisEndpoint
    /// The options this connection was made with.
    public let options: RedisConnectionOptions
    /// Increases by one every time a new underlying connection is established (1 after the first
    /// connect). Callers that keep per-connection state (subscriptions, script caches) compare it.
    public private(set) var generation = 0
    /// The server this connection is (or was last) connected to, for messages: after a Sentinel
    /// lookup, the master's address.
    public private(set) var serverAddress: String

    private var socket: RedisSocket?
    private var reader = RESPReader()
    /// Whether the current socket has delivered a reply yet (a plain client on a TLS port is
    /// closed before its first one).
    private var hasReceivedReply = false
    /// The Sentinel view this connection's master came from, to notice a failover.
    private var masterEpoch: Int?
    private let readBuffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 16 * 1024, alignment: 1)
    /// Set by ``RedisSubscription``: a subscribed socket is readable whenever a message waits, so
    /// readability no longer means "closed by the server".
    var isInSubscribeMode = false
    /// Set by the cluster router after an `ASK` redirect: the next exchange goes out preceded by
    /// `ASKING` in the same write, so that the node importing the slot serves it. One exchange only.
    var isAskingBeforeNextCommand = false

    /// Connects now, retrying per `options.reconnect` if the server is not reachable yet.
    /// - Throws: ``RedisError`` (refused, timeout, TLS, authentication failure, ...).
    public init(endpoint: RedisEndpoint, options: RedisConnectionOptions = .init()) throws {
        self.endpoint = endpoint
        self.options = options
        self.serverAddress = endpoint.address
        try ensureConnected()
    }

    /// Connects to the server named by a Redis URL.
    public convenience init(url: String, options: RedisConnectionOptions = .init()) throws {
        try self.init(endpoint: RedisEndpoint(url: url), options: options)
    }

    deinit {
        readBuffer.deallocate()
    }

    /// The socket, for ``PipelinedConnection``, which logs in through this connection and then
    /// does its own I/O on the socket (this connection's parser is then never used again).
    var connectedSocket: RedisSocket? { socket }

    /// Whether an underlying connection is currently open (it may still turn out to be dead).
    public var isConnected: Bool { socket != nil }

    /// Closes the underlying connection; the next command reconnects.
    public func close() {
        socket = nil
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
        let socket = try ensureConnected()
        let limit = timeout ?? options.commandTimeout
        let asking = isAskingBeforeNextCommand
        isAskingBeforeNextCommand = false
        var replies = try roundTrip(asking ? [RedisCommand("ASKING")] + commands : commands, on: socket, within: limit)
        if asking { replies.removeFirst() }
        if replies.contains(where: { $0.isReadOnlyError }) && isFollowingAMaster {
            // A master that Sentinel demoted: drop it so that the next command finds the new one.
            SentinelMonitor.shared(for: endpoint).masterMayHaveMoved(from: serverAddress, epoch: masterEpoch)
            close()
        }
        return replies
    }

    /// Writes `commands` in one go and reads their replies, mapping failures to ``RedisError``
    /// and dropping the socket after any of them.
    private func roundTrip(_ commands: [RedisCommand], on socket: RedisSocket, within limit: Duration?) throws
        -> [RESPValue]
    {
        let deadline = limit.map { ContinuousClock.now + $0 }
        var request: [UInt8] = []
        for command in commands { command.encode(into: &request) }
        let first = commands[0].name
        do {
            try request.withUnsafeBytes { try socket.write($0, deadline: deadline) }
        } catch {
            throw failure(error, command: first, operation: "writing \(first)", limit: limit)
        }
        var replies: [RESPValue] = []
        replies.reserveCapacity(commands.count)
        while replies.count < commands.count {
            let name = commands[replies.count].name
            if let reply = try nextParsedReply(command: name) {
                replies.append(reply)
                continue
            }
            do {
                try receive(from: socket, deadline: deadline)
            } catch {
                throw failure(error, command: name, operation: "reading the reply to \(name)", limit: limit)
            }
        }
        return replies
    }

    private func nextParsedReply(command: String) throws -> RESPValue? {
        do {
            guard let reply = try reader.next() else { return nil }
            hasReceivedReply = true
            return reply
        } catch {
            close()
            throw RedisError.protocolError(address: serverAddress, detail: error.detail)
        }
    }

    private func receive(from socket: RedisSocket, deadline: ContinuousClock.Instant?) throws {
        let count = try socket.read(into: readBuffer, deadline: deadline)
        do {
            try reader.feed(UnsafeRawBufferPointer(rebasing: readBuffer[..<count]))
        } catch {
            close()
            throw RedisError.protocolError(address: serverAddress, detail: error.detail)
        }
    }

    // MARK: - Replication

    /// `WAIT replicas timeout` for the writes this connection made while its ``generation`` was
    /// `generation`: how many replicas acknowledged them.
    ///
    /// `WAIT` counts the writes of the connection it is sent on. A connection that was replaced
    /// since the writes (the server closed it, a Sentinel named a new master) has written
    /// nothing, and its `WAIT` would count replicas that never received them: then no replica
    /// can be said to have them, and the answer is 0 (the caller retries its writes).
    /// - Throws: an error of the `WAIT` itself (connection lost, timeout, error reply).
    public func waitForReplicas(_ replicas: Int, timeout: Duration, writtenIn generation: Int) throws -> Int {
        guard generation == self.generation, socket != nil else { return 0 }
        let reply = try send(
            RedisCommand("WAIT", replicas, max(1, timeout.milliseconds)), timeout: .some(timeout + .seconds(2)))
        guard generation == self.generation else { return 0 }
        guard let count = reply.integer else {
            throw RedisError.unexpectedReply(command: "WAIT", reply: reply.description)
        }
        return Int(count)
    }

    // MARK: - Pub/sub support (used by RedisSubscription)

    /// Sends commands without reading replies (subscribe-mode writes).
    func write(_ commands: [RedisCommand]) throws {
        let socket = try ensureConnected()
        var request: [UInt8] = []
        for command in commands { command.encode(into: &request) }
        let name = commands.first?.name ?? ""
        do {
            let deadline = options.commandTimeout.map { ContinuousClock.now + $0 }
            try request.withUnsafeBytes { try socket.write($0, deadline: deadline) }
        } catch {
            throw failure(error, command: name, operation: "writing \(name)", limit: options.commandTimeout)
        }
    }

    /// Waits up to `timeout` for the next reply without breaking the connection on expiry: an idle
    /// subscriber waiting for messages is perfectly healthy.
    /// - Returns: the reply, or `nil` when the deadline passes first.
    func readReply(within timeout: Duration) throws -> RESPValue? {
        guard let socket else {
            throw RedisError.connectionLost(address: serverAddress, command: "SUBSCRIBE", reason: "not connected")
        }
        let deadline = ContinuousClock.now + timeout
        while true {
            if let reply = try nextParsedReply(command: "SUBSCRIBE") { return reply }
            let remaining = deadline - ContinuousClock.now
            if remaining <= .zero || !socket.isReadable(within: remaining) { return nil }
            do {
                try receive(from: socket, deadline: ContinuousClock.now + .seconds(1))
            } catch {
                throw failure(error, command: "SUBSCRIBE", operation: "reading a pushed message", limit: .seconds(1))
            }
        }
    }

    // MARK: - Connecting

    /// The Sentinel epoch of the master this connection follows (`nil` without Sentinel).
    var masterEpochFollowed: Int? { masterEpoch }

    /// Whether a Sentinel has announced a new master since this connection was made (it must be
    /// dropped; for a subscription, renewed on the new master).
    var followsAnOldMaster: Bool {
        masterEpoch.map { SentinelMonitor.shared(for: endpoint).epoch != $0 } ?? false
    }

    private var isFollowingAMaster: Bool {
        if case .sentinel = endpoint.topology { return true }
        return false
    }

    /// Returns a live socket, connecting or reconnecting first when there is none, when the idle
    /// one was closed by the server (checked before anything is sent), or when a Sentinel has
    /// announced a new master since it was made.
    @discardableResult
    func ensureConnected() throws -> RedisSocket {
        if let socket {
            if !followsAnOldMaster && (isInSubscribeMode || !socket.isClosedOrOutOfStep()) { return socket }
            close()
        }
        let policy = options.reconnect
        let start = ContinuousClock.now
        var attempt = 0
        while true {
            do {
                let socket = try connectOnce()
                self.socket = socket
                generation += 1
                return socket
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
        case .connectionRefused, .connectionFailed, .timeout, .masterUnavailable, .notAMaster: return true
        case .server(let server): return server.code == "LOADING"
        default: return false
        }
    }

    private func connectOnce() throws -> RedisSocket {
        switch endpoint.topology {
        case .standalone(let transport):
            return try open(transport, roleMustBeMaster: false)
        case .cluster(let seeds):
            var lastError: (any Error)?
            for seed in seeds {
                do { return try open(seed, roleMustBeMaster: false) } catch { lastError = error }
            }
            throw lastError ?? RedisError.connectionFailed(address: endpoint.address, reason: "no seed nodes")
        case .sentinel:
            let monitor = SentinelMonitor.shared(for: endpoint)
            let master = try monitor.master(options: options)
            do {
                let socket = try open(master.transport, roleMustBeMaster: true)
                masterEpoch = master.epoch
                return socket
            } catch let error as RedisError {
                monitor.masterMayHaveMoved(from: RedisEndpoint.address(of: master.transport), epoch: master.epoch)
                throw error
            }
        }
    }

    /// Connects to one server and logs in (`AUTH`, `SELECT`, and `ROLE` when it must be a master).
    private func open(_ transport: RedisEndpoint.Transport, roleMustBeMaster: Bool) throws -> RedisSocket {
        serverAddress = RedisEndpoint.address(of: transport)
        reader = RESPReader()
        hasReceivedReply = false
        masterEpoch = nil
        let socket = try RedisSocket.connect(
            to: transport, tls: endpoint.tls, timeout: options.connectTimeout, keepAlive: options.keepAlive)
        var handshake: [RedisCommand] = []
        if let password = endpoint.password {
            handshake.append(
                endpoint.username.map { RedisCommand("AUTH", $0, password) } ?? RedisCommand("AUTH", password))
        }
        if endpoint.database != 0 { handshake.append(RedisCommand("SELECT", endpoint.database)) }
        if roleMustBeMaster { handshake.append(RedisCommand("ROLE")) }
        guard !handshake.isEmpty else { return socket }
        let replies = try roundTrip(handshake, on: socket, within: options.commandTimeout ?? options.connectTimeout)
        for (command, reply) in zip(handshake, replies) {
            guard case .error(let message) = reply else { continue }
            // ROLE is an admin command: an ACL user without it (a worker) trusts the Sentinels'
            // answer, and a write to a demoted master still ends in READONLY and a new lookup.
            if command.name == "ROLE" && message.hasPrefix("NOPERM") { continue }
            throw RedisError.server(RedisServerError(message: message, command: command.name))
        }
        if roleMustBeMaster, let role = replies.last?.array?.first?.string, role != "master" {
            throw RedisError.notAMaster(address: serverAddress, role: role)
        }
        return socket
    }

    // MARK: - Errors

    /// Turns a socket failure into a ``RedisError`` and discards the (now unusable) socket.
    private func failure(_ error: any Error, command: String, operation: String, limit: Duration?) -> RedisError {
        close()
        if let error = error as? RedisError { return error }
        guard let failure = error as? SocketFailure else {
            return .connectionLost(address: serverAddress, command: command, reason: "\(error)")
        }
        return failure.redisError(
            address: serverAddress, command: command, operation: operation, limit: limit,
            beforeFirstReply: !hasReceivedReply, isTLS: endpoint.tls != nil)
    }
}

extension RESPValue {
    /// Whether this is a `READONLY` error reply (a write sent to a replica).
    var isReadOnlyError: Bool {
        if case .error(let message) = self { return message.hasPrefix("READONLY") }
        return false
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
