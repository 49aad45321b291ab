/// The fencing token of one acquisition: strictly greater than every token handed out before
/// it for the same lock. Pass it with every write the lock protects; a store that has seen a
/// greater token rejects the write (see ``DistributedLock/fencedSet(_:value:fence:)``).
public struct FencingToken: Sendable, Hashable, Comparable, CustomStringConvertible {
    /// The counter value.
    public let value: Int64

    /// Wraps a counter value.
    public init(_ value: Int64) { self.value = value }

    public static func < (lhs: FencingToken, rhs: FencingToken) -> Bool { lhs.value < rhs.value }
    public var description: String { String(value) }
}
