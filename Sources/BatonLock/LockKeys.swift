import BatonSupport

/// The Redis keys of one lock. All share the hash tag `{name}`, so they live in one Redis Cluster
/// slot and one Lua script may touch them all.
///
/// | key | type | holds |
/// |---|---|---|
/// | `prefix:{name}:lock` | string with a TTL | the holder's owner token (`host:pid:random`) |
/// | `prefix:{name}:fence` | integer | the fencing counter: the last token handed out |
/// | `prefix:{name}:queue` | list | owner tokens of waiters, first come first served |
/// | `prefix:{name}:waiters` | hash | owner token → `registrationExpiry:ttl` (ms) |
///
/// Grants are published on the channel `prefix:{name}:wake`.
public struct LockKeys: Sendable, Hashable {
    /// The lock's name (inside the braces).
    public let name: String
    /// The prefix before the hash tag.
    public let prefix: String

    /// Builds the key names after validating `name` and `prefix`.
    /// - Throws: ``LockError/invalidName(_:reason:)``.
    public init(prefix: String, name: String, kind: String = "lock name") throws {
        try Self.validate(name: name, kind: kind)
        if let reason = KeyNameRules.prefixProblem(prefix) { throw LockError.invalidName(prefix, reason: reason) }
        self.prefix = prefix
        self.name = name
    }

    /// `prefix:{name}:lock`
    public var lock: String { "\(prefix):{\(name)}:lock" }
    /// `prefix:{name}:fence`
    public var fence: String { "\(prefix):{\(name)}:fence" }
    /// `prefix:{name}:queue`
    public var queue: String { "\(prefix):{\(name)}:queue" }
    /// `prefix:{name}:waiters`
    public var waiters: String { "\(prefix):{\(name)}:waiters" }
    /// `prefix:{name}:wake` (a pub/sub channel, not a key)
    public var wakeChannel: String { "\(prefix):{\(name)}:wake" }

    /// The keys the acquire, release and withdraw scripts take, in their order.
    var scriptKeys: [String] { [lock, fence, queue, waiters] }

    /// Lock and service names (``BatonSupport/KeyNameRules/nameProblem(_:kind:)``).
    /// - Parameter kind: how the name is called in the error message ("lock name", "service name").
    public static func validate(name: String, kind: String = "lock name") throws {
        if let reason = KeyNameRules.nameProblem(name, kind: kind) { throw LockError.invalidName(name, reason: reason) }
    }
}
