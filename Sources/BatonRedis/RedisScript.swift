import BatonSupport

/// A Lua script run with `EVALSHA`, falling back to `EVAL` when the server's script cache does not
/// have it (`NOSCRIPT`: after a restart, a failover or `SCRIPT FLUSH`). `EVAL` also caches it, so
/// the next call is an `EVALSHA` again.
///
/// Declare scripts as constants next to the code that uses them, with a comment stating their
/// contract (KEYS, ARGV, return values).
public struct RedisScript: Sendable, Hashable {
    /// The Lua source.
    public let source: String
    /// The SHA-1 of the source, as `SCRIPT LOAD` returns it.
    public let sha1: String

    /// Creates a script; its SHA-1 is computed locally.
    public init(_ source: String) {
        self.source = source
        self.sha1 = Digest.sha1Hex(Array(source.utf8))
    }

    /// Deletes a key only while it holds a given value (a claim, a lease, a gate taken by this
    /// process). KEYS: the key. ARGV: 1 the value. Returns 1 when deleted, 0 when it held another
    /// value or none.
    public static let compareAndDelete = RedisScript(
        """
        if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
        return 0
        """)
}

extension RedisConnection {
    /// Runs a script by hash, loading it with `EVAL` when the server answers `NOSCRIPT`.
    /// - Returns: the script's reply.
    /// - Throws: ``RedisError/server(_:)`` when the script raises an error, or a connection error.
    @discardableResult
    public func run(
        _ script: RedisScript, keys: [any RedisArgumentConvertible] = [], arguments: [any RedisArgumentConvertible] = []
    ) throws -> RESPValue {
        let tail: [any RedisArgumentConvertible] = [keys.count] + keys + arguments
        do {
            return try send(RedisCommand("EVALSHA", arguments: [script.sha1] + tail))
        } catch let error as RedisError where error.serverError?.code == "NOSCRIPT" {
            return try send(RedisCommand("EVAL", arguments: [script.source] + tail))
        }
    }
}

extension RedisClient {
    /// Runs a script by hash on the shared pipelined connection, loading it with `EVAL` when the
    /// server answers `NOSCRIPT`.
    /// - Throws: ``RedisError/server(_:)`` when the script raises an error, or a connection error.
    @discardableResult
    public func run(_ script: RedisScript, keys: [String] = [], arguments: [any RedisArgumentConvertible] = [])
        async throws -> RESPValue
    {
        let tail: [any RedisArgumentConvertible] = [keys.count] + keys + arguments
        do {
            return try await send(RedisCommand("EVALSHA", arguments: [script.sha1] + tail))
        } catch let error as RedisError where error.serverError?.code == "NOSCRIPT" {
            return try await send(RedisCommand("EVAL", arguments: [script.source] + tail))
        }
    }
}
