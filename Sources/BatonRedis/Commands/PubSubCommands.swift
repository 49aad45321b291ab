// MARK: - Pub/sub commands

extension RedisClient {
    /// Publishes a message. [PUBLISH](https://redis.io/commands/publish/)
    /// - Returns: how many subscribers received it.
    @discardableResult
    public func publish(_ message: some RedisArgumentConvertible, to channel: String) async throws -> Int {
        Int(try await send(RedisCommand("PUBLISH", channel, message)).integer ?? 0)
    }
}
