import Foundation

/// A flag set once, from any thread, and read by loops that must end: the listener threads that
/// block in hiredis calls, and the daemon's scheduler loop.
public final class StopFlag: @unchecked Sendable {
    private let lock = NSLock()
    private var value = false

    /// Creates an unset flag.
    public init() {}

    /// Sets the flag (idempotent).
    public func set() { lock.withLock { value = true } }

    /// Whether the flag has been set.
    public var isSet: Bool { lock.withLock { value } }
}
