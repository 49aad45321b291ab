/// A message delivered to a subscriber.
public struct PubSubMessage: Sendable, Hashable {
    /// The channel the message was published on.
    public let channel: String
    /// The pattern that matched, for messages received through `PSUBSCRIBE`.
    public let pattern: String?
    /// The message body, binary-safe.
    public let payload: [UInt8]

    /// Creates a message (the subscription makes these; tests compare against them).
    public init(channel: String, pattern: String?, payload: [UInt8]) {
        self.channel = channel
        self.pattern = pattern
        self.payload = payload
    }

    /// The body as UTF-8 text.
    public var text: String { String(decoding: payload, as: UTF8.self) }
}

// @unchecked: one owner at a time (hiredis contexts are not thread-safe); Sendable only to hand it over.
/// A dedicated pub/sub connection: subscribe to channels or patterns, then wait for messages with
/// a deadline.
///
/// When the connection drops, the next ``next(timeout:)`` reconnects, subscribes again to
/// everything, and reports ``Event/resubscribed``: messages published while it was away are lost
/// (pub/sub has no memory), so the caller should re-read whatever state it follows.
///
/// **Ownership:** like ``RedisConnection``, one owner at a time.
public final class RedisSubscription: @unchecked Sendable {
    /// What ``next(timeout:)`` returns.
    public enum Event: Sendable, Hashable {
        /// A published message.
        case message(PubSubMessage)
        /// The connection was re-established and every subscription renewed; messages may have
        /// been missed meanwhile.
        case resubscribed
    }

    private let connection: RedisConnection
    private var channels: Set<String> = []
    private var patterns: Set<String> = []
    private var pending: [PubSubMessage] = []
    private var subscribedGeneration: Int

    /// Opens the dedicated connection.
    public init(endpoint: RedisEndpoint, options: RedisConnectionOptions = .init()) throws {
        connection = try RedisConnection(endpoint: endpoint, options: options)
        connection.isInSubscribeMode = true
        subscribedGeneration = connection.generation
    }

    /// The channels currently subscribed to.
    public var subscribedChannels: Set<String> { channels }

    /// Subscribes to channels and waits for the server's confirmation.
    public func subscribe(_ channels: [String]) throws {
        let new = channels.filter { !self.channels.contains($0) }
        guard !new.isEmpty else { return }
        try changeSubscriptions("SUBSCRIBE", new, confirmation: "subscribe")
        self.channels.formUnion(new)
    }

    /// Subscribes to glob-style patterns (`PSUBSCRIBE`) and waits for the confirmation.
    public func psubscribe(_ patterns: [String]) throws {
        let new = patterns.filter { !self.patterns.contains($0) }
        guard !new.isEmpty else { return }
        try changeSubscriptions("PSUBSCRIBE", new, confirmation: "psubscribe")
        self.patterns.formUnion(new)
    }

    /// Unsubscribes from channels.
    public func unsubscribe(_ channels: [String]) throws {
        let old = channels.filter { self.channels.contains($0) }
        guard !old.isEmpty else { return }
        self.channels.subtract(old)
        try changeSubscriptions("UNSUBSCRIBE", old, confirmation: "unsubscribe")
    }

    /// Unsubscribes from patterns.
    public func punsubscribe(_ patterns: [String]) throws {
        let old = patterns.filter { self.patterns.contains($0) }
        guard !old.isEmpty else { return }
        self.patterns.subtract(old)
        try changeSubscriptions("PUNSUBSCRIBE", old, confirmation: "punsubscribe")
    }

    /// Waits up to `timeout` for the next message.
    ///
    /// - Returns: the next event, or `nil` when the deadline passed with nothing to report.
    /// - Throws: ``RedisError`` when the connection broke and could not be re-established within
    ///   the reconnect policy.
    public func next(timeout: Duration) throws -> Event? {
        if !pending.isEmpty { return .message(pending.removeFirst()) }
        if connection.followsAnOldMaster { connection.close() }
        if !connection.isConnected || connection.generation != subscribedGeneration {
            try resubscribe()
            return .resubscribed
        }
        let deadline = ContinuousClock.now + timeout
        while true {
            let remaining = deadline - ContinuousClock.now
            do {
                guard let reply = try connection.readReply(within: max(remaining, .zero)) else { return nil }
                if let message = Self.message(in: reply) { return .message(message) }
                // Subscription confirmations and pongs are not events.
            } catch let error as RedisError where error.isConnectionProblem {
                connection.close()
                try resubscribe()
                return .resubscribed
            }
        }
    }

    private func resubscribe() throws {
        try connection.ensureConnected()
        subscribedGeneration = connection.generation
        let channels = Array(self.channels)
        let patterns = Array(self.patterns)
        if !channels.isEmpty { try changeSubscriptions("SUBSCRIBE", channels, confirmation: "subscribe") }
        if !patterns.isEmpty { try changeSubscriptions("PSUBSCRIBE", patterns, confirmation: "psubscribe") }
    }

    /// Sends a (un)subscribe command and reads until every name is confirmed, keeping any messages
    /// that arrive in between.
    private func changeSubscriptions(_ command: String, _ names: [String], confirmation: String) throws {
        if connection.generation != subscribedGeneration && !(channels.isEmpty && patterns.isEmpty) {
            // The connection was replaced since the last subscribe: renew everything first.
            try resubscribe()
        }
        try connection.write([RedisCommand(command, arguments: names)])
        subscribedGeneration = connection.generation
        var unconfirmed = Set(names)
        let deadline = ContinuousClock.now + (connection.options.commandTimeout ?? .seconds(30))
        while !unconfirmed.isEmpty {
            let remaining = deadline - ContinuousClock.now
            guard remaining > .zero, let reply = try connection.readReply(within: remaining) else {
                connection.close()
                throw RedisError.timeout(
                    address: connection.endpoint.address, operation: command,
                    after: connection.options.commandTimeout ?? .seconds(30))
            }
            if case .error(let message) = reply {
                throw RedisError.server(RedisServerError(message: message, command: command))
            }
            if let message = Self.message(in: reply) {
                pending.append(message)
            } else if let parts = reply.array, parts.count == 3, parts[0].string == confirmation,
                let name = parts[1].string
            {
                unconfirmed.remove(name)
            }
        }
    }

    private static func message(in reply: RESPValue) -> PubSubMessage? {
        guard let parts = reply.array, let kind = parts.first?.string else { return nil }
        switch kind {
        case "message" where parts.count == 3:
            return PubSubMessage(channel: parts[1].string ?? "", pattern: nil, payload: parts[2].bytes ?? [])
        case "pmessage" where parts.count == 4:
            return PubSubMessage(
                channel: parts[2].string ?? "", pattern: parts[1].string, payload: parts[3].bytes ?? [])
        default:
            return nil
        }
    }
}
