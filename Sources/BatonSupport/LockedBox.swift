import Foundation

/// A value behind a lock: every read and write goes through ``withLockedValue(_:)``, so the lock
/// can neither be forgotten nor held across a return path by mistake (the shape of NIO's
/// `NIOLockedValueBox`).
///
/// ```swift
/// let counts = LockedBox([String: Int]())
/// counts.withLockedValue { $0["a", default: 0] += 1 }
/// ```
///
/// Keep the closures short and never `await` or block in them: the lock is a plain mutex.
public final class LockedBox<Value> {
    private let lock = NSLock()
    private var value: Value

    /// Creates a box holding `value`.
    public init(_ value: Value) {
        self.value = value
    }

    /// Runs `body` with exclusive access to the value and returns what it returns.
    /// - Parameter body: reads or changes the value in place; must not re-enter this box.
    public func withLockedValue<Result>(_ body: (inout Value) throws -> Result) rethrows -> Result {
        lock.lock()
        defer { lock.unlock() }
        return try body(&value)
    }
}

// The lock serialises every access to `value`, which is what Sendable asks of a class.
extension LockedBox: @unchecked Sendable where Value: Sendable {}
