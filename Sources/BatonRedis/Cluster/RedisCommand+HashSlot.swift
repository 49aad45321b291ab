extension RedisCommand {
    /// Where a command's first key is, for routing in a Redis Cluster: the one table of it.
    ///
    /// Most commands name their key first (`GET key`, `SET key ...`, `BLMOVE source ...`), which
    /// is the default. A multi-key command is routed by its first key: its keys must share a slot
    /// anyway, or the server answers `CROSSSLOT`.
    enum KeyPosition: Sendable, Hashable {
        /// No key: the command may go to any master (`PUBLISH` too: a classic `PUBLISH` reaches
        /// every node of the cluster).
        case keyless
        /// The argument at this index (the command name is index 0).
        case at(Int)
        /// A key count at this index, the keys right after it; keyless when the count is 0
        /// (`EVAL script numkeys key ...`).
        case countedAt(Int)
        /// The first argument after this word (`XREAD ... STREAMS key ...`).
        case after(String)
    }

    /// Every command whose key is not its first argument.
    static let keyPositions: [String: KeyPosition] = {
        var table: [String: KeyPosition] = [:]
        let keyless = [
            "ACL", "ASKING", "AUTH", "BGREWRITEAOF", "BGSAVE", "CLIENT", "CLUSTER", "COMMAND", "CONFIG", "DBSIZE",
            "DEBUG", "DISCARD", "ECHO", "EXEC", "FAILOVER", "FLUSHALL", "FLUSHDB", "FUNCTION", "HELLO", "INFO", "KEYS",
            "LASTSAVE", "LATENCY", "LOLWUT", "MODULE", "MONITOR", "MULTI", "PING", "PSUBSCRIBE", "PUBLISH", "PUBSUB",
            "PUNSUBSCRIBE", "QUIT", "RANDOMKEY", "READONLY", "READWRITE", "REPLICAOF", "RESET", "ROLE", "SAVE", "SCAN",
            "SCRIPT", "SELECT", "SHUTDOWN", "SLAVEOF", "SLOWLOG", "SUBSCRIBE", "SWAPDB", "TIME", "UNSUBSCRIBE",
            "UNWATCH", "WAIT", "WAITAOF",
        ]
        for name in keyless { table[name] = .keyless }
        // BITOP op destkey ..., OBJECT ENCODING key, MEMORY USAGE key, XINFO STREAM key, XGROUP CREATE key ...
        for name in ["BITOP", "MEMORY", "OBJECT", "XGROUP", "XINFO"] { table[name] = .at(2) }
        for name in ["EVAL", "EVALSHA", "EVAL_RO", "EVALSHA_RO", "FCALL", "FCALL_RO"] { table[name] = .countedAt(2) }
        for name in ["LMPOP", "SINTERCARD", "ZDIFF", "ZINTER", "ZINTERCARD", "ZMPOP", "ZUNION"] {
            table[name] = .countedAt(1)
        }
        // BLMPOP timeout numkeys key ..., BZMPOP likewise.
        for name in ["BLMPOP", "BZMPOP"] { table[name] = .countedAt(2) }
        for name in ["XREAD", "XREADGROUP"] { table[name] = .after("STREAMS") }
        return table
    }()

    /// The key that decides which node of a Redis Cluster serves this command (its first key),
    /// or `nil` for a command without keys.
    var routingKey: [UInt8]? {
        let position = Self.keyPositions[name] ?? .at(1)
        let index: Int
        switch position {
        case .keyless:
            return nil
        case .at(let at):
            index = at
        case .countedAt(let at):
            guard at < arguments.count, let count = Int(String(decoding: arguments[at], as: UTF8.self)), count > 0
            else { return nil }
            index = at + 1
        case .after(let word):
            guard
                let found = arguments.dropFirst().firstIndex(where: {
                    String(decoding: $0, as: UTF8.self).uppercased() == word
                })
            else { return nil }
            index = found + 1
        }
        return index < arguments.count ? arguments[index] : nil
    }

    /// The hash slot of ``routingKey``; `nil` for a command without keys.
    var hashSlot: Int? {
        routingKey.map(HashSlot.of(bytes:))
    }
}
