import BatonRedis
import BatonSupport

/// The locks under one key prefix on one Redis: hands out ``DistributedLock`` values and owns the
/// process's single listener for lock grants.
///
/// ```swift
/// let locks = try LockService(client: redis, prefix: "baton")
/// try await locks.lock("nightly-report").withLock(timeout: .seconds(10)) { lease in
///     // exclusive here; pass lease.fence to the writes this protects
/// }
/// ```
public final class LockService: Sendable {
    /// The Redis client the locks use. It needs a pool of at least two connections: a waiter's
    /// fallback checks and a holder's renewals must not queue behind each other.
    public let client: RedisClient
    /// The key prefix (`prefix:{name}:lock`). Default: `baton`.
    public let prefix: String
    let wakeups: LockWakeups
    /// Told how long each ``DistributedLock/acquire(timeout:)`` waited, whether it took the lock or
    /// not (for a metric). Default: `nil`.
    let onWait: (@Sendable (Duration) -> Void)?

    /// Creates the service.
    /// - Parameter onWait: told how long each ``DistributedLock/acquire(timeout:)`` waited, lock
    ///   taken or not (a latency metric). Default: `nil`.
    /// - Throws: ``LockError/invalidName(_:reason:)`` for a bad prefix.
    public init(
        client: RedisClient, prefix: String = BatonDefaults.lockPrefix, onWait: (@Sendable (Duration) -> Void)? = nil
    ) throws {
        _ = try LockKeys(prefix: prefix, name: "probe")
        self.client = client
        self.prefix = prefix
        self.onWait = onWait
        self.wakeups = LockWakeups(
            endpoint: client.endpoint, connectionOptions: client.options.connection, prefix: prefix)
    }

    deinit {
        wakeups.stop()
    }

    /// The lock called `name`.
    /// - Throws: ``LockError/invalidName(_:reason:)`` unless `name` is 1-128 letters, digits,
    ///   `-`, `_` or `.`.
    public func lock(_ name: String, options: LockOptions = .init()) throws -> DistributedLock {
        DistributedLock(service: self, keys: try LockKeys(prefix: prefix, name: name), options: options)
    }

    /// Stops the grant listener. Waiters still waiting fall back to polling at their deadlines.
    public func shutDown() {
        wakeups.stop()
    }
}
