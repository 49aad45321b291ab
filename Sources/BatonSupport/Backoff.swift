import Foundation

/// Exponential backoff with "full jitter": the pause before attempt *n* (0-based) is a uniform
/// draw between zero and `min(cap, base × 2ⁿ)`, so that many clients that failed together do not
/// retry together. The one backoff in Baton: reconnects, the listener loops, start-up, refresh
/// retries and persist retries all use it.
public struct Backoff: Sendable, Hashable {
    /// The bound of the first pause.
    public var base: Duration
    /// The largest bound.
    public var cap: Duration
    /// Attempts so far (the exponent of the next pause).
    public private(set) var attempt = 0

    /// Creates a backoff starting at `base`, bounded by `cap`.
    public init(base: Duration, cap: Duration) {
        self.base = base
        self.cap = cap
    }

    /// The pause before attempt `attempt` (0-based), drawn afresh.
    public func delay(beforeAttempt attempt: Int) -> Duration {
        let bound = min(cap.seconds, base.seconds * Double(1 << min(max(attempt, 0), 30)))
        return .milliseconds(Int64(Double.random(in: 0...max(0, bound)) * 1000))
    }

    /// The next pause; counts the attempt.
    public mutating func next() -> Duration {
        defer { attempt += 1 }
        return delay(beforeAttempt: attempt)
    }

    /// Starts over (after a success).
    public mutating func reset() {
        attempt = 0
    }

    /// Sleeps for `duration` even when the calling task is cancelled: for loops that must not
    /// give up (a rotated refresh token waiting for Redis), which would otherwise spin.
    public static func sleepIgnoringCancellation(_ duration: Duration) async {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            DispatchQueue.global().asyncAfter(deadline: .now() + max(0, duration.seconds)) { continuation.resume() }
        }
    }
}
