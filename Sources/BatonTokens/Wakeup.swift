import Foundation

/// A one-shot-at-a-time wake-up for the scheduler loop: `wait(upTo:)` returns when `signal()` is
/// called or the timeout passes, whichever is first. A signal that arrives while nobody waits is
/// kept for the next wait.
public final class Wakeup: @unchecked Sendable {
    private let lock = NSLock()
    private var continuation: CheckedContinuation<Void, Never>?
    private var pending = false
    private var generation = 0

    /// Creates a wake-up with nothing pending.
    public init() {}

    /// Wakes the current (or next) waiter.
    public func signal() {
        lock.lock()
        if let continuation {
            self.continuation = nil
            lock.unlock()
            continuation.resume()
        } else {
            pending = true
            lock.unlock()
        }
    }

    /// Waits until signalled or until `timeout` passes.
    public func wait(upTo timeout: Duration) async {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            lock.lock()
            if pending {
                pending = false
                lock.unlock()
                continuation.resume()
                return
            }
            generation += 1
            let mine = generation
            self.continuation = continuation
            lock.unlock()
            DispatchQueue.global().asyncAfter(deadline: .now() + max(0, timeout.seconds)) { [weak self] in
                self?.expire(mine)
            }
        }
    }

    private func expire(_ generation: Int) {
        lock.lock()
        guard generation == self.generation, let continuation else { lock.unlock(); return }
        self.continuation = nil
        lock.unlock()
        continuation.resume()
    }
}
