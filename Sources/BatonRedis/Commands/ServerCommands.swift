// MARK: - Server and connection commands

extension RedisClient {
    /// Checks that the server answers. [PING](https://redis.io/commands/ping/)
    public func ping() async throws {
        let reply = try await send(RedisCommand("PING"))
        guard reply.string == "PONG" else {
            throw RedisError.unexpectedReply(command: "PING", reply: reply.description)
        }
    }

    /// The server's clock, in milliseconds since the Unix epoch. [TIME](https://redis.io/commands/time/)
    ///
    /// Baton judges token freshness and lock deadlines by this clock, so that replicas on hosts
    /// with skewed clocks agree.
    public func serverTimeMilliseconds() async throws -> Int64 {
        try Self.milliseconds(fromTimeReply: try await send(RedisCommand("TIME")))
    }

    /// The milliseconds since the Unix epoch in a `TIME` reply (for callers that pipeline `TIME`).
    /// - Throws: ``RedisError/unexpectedReply(command:reply:)`` for anything but `[seconds, micros]`.
    public static func milliseconds(fromTimeReply reply: RESPValue) throws -> Int64 {
        guard let parts = reply.array, parts.count == 2, let seconds = parts[0].integer, let micros = parts[1].integer
        else {
            throw RedisError.unexpectedReply(command: "TIME", reply: reply.description)
        }
        return seconds * 1000 + micros / 1000
    }
}
