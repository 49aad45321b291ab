import Foundation

// @unchecked: NSCondition guards `value`; every access takes it.
/// A flag set once, from any thread, and read by loops that must end: the threads that block in
/// hiredis calls, and the daemon's scheduler loop. A thread can also sleep on it
/// (``sleep(for:)``), so a backoff pause ends as soon as the flag is set.
public final class StopFlag: @unchecked Sendable {
    private let condition = NSCondition()
    private var value = false

    /// Creates an unset flag.
    public init() {}

    /// Sets the flag (idempotent) and wakes every thread sleeping on it.
    public func set() {
        condition.lock()
        value = true
        condition.broadcast()
        condition.unlock()
    }

    /// Whether the flag has been set.
    public var isSet: Bool {
        condition.lock()
        defer { condition.unlock() }
        return value
    }

    /// Blocks the calling (non-cooperative) thread for `duration`, or until the flag is set.
    /// Never call it from an `async` context: it would park a thread of Swift's cooperative pool.
    /// - Returns: whether the flag is set.
    @discardableResult
    public func sleep(for duration: Duration) -> Bool {
        let deadline = Date(timeIntervalSinceNow: max(0, duration.seconds))
        condition.lock()
        defer { condition.unlock() }
        while !value && condition.wait(until: deadline) {}
        return value
    }
}
