// MARK: - String commands

extension RedisClient {
    /// How `SET` treats an existing key.
    public enum SetCondition: Sendable {
        /// Always set (the default).
        case always
        /// `NX`: only set when the key does not exist.
        case ifNotExists
        /// `XX`: only set when the key already exists.
        case ifExists
    }

    /// Reads a string value. [GET](https://redis.io/commands/get/)
    /// - Returns: the value's bytes, or `nil` when the key does not exist.
    public func get(_ key: String) async throws -> [UInt8]? {
        let reply = try await send(RedisCommand("GET", key))
        if reply.isNull { return nil }
        guard let bytes = reply.bytes else {
            throw RedisError.unexpectedReply(command: "GET", reply: reply.description)
        }
        return bytes
    }

    /// Writes a string value. [SET](https://redis.io/commands/set/)
    /// - Parameters:
    ///   - expiry: a time to live (`PX`), or `nil` for none.
    ///   - condition: `NX` / `XX` behaviour; default ``SetCondition/always``.
    /// - Returns: whether the value was written (`false` when the condition was not met).
    @discardableResult
    public func set(
        _ key: String, to value: some RedisArgumentConvertible, expiry: Duration? = nil,
        condition: SetCondition = .always
    ) async throws -> Bool {
        var arguments: [any RedisArgumentConvertible] = [key, value]
        if let expiry { arguments += ["PX", Int64(max(1, expiry.milliseconds))] }
        switch condition {
        case .always: break
        case .ifNotExists: arguments.append("NX")
        case .ifExists: arguments.append("XX")
        }
        return try await send(RedisCommand("SET", arguments: arguments)).isNull == false
    }

    /// Deletes keys. [DEL](https://redis.io/commands/del/)
    /// - Returns: how many keys existed and were deleted.
    @discardableResult
    public func delete(_ keys: [String]) async throws -> Int {
        guard !keys.isEmpty else { return 0 }
        return Int(try await send(RedisCommand("DEL", arguments: keys)).integer ?? 0)
    }
}
