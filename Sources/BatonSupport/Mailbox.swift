import Foundation

/// A thread-safe mailbox that `async` code waits on with a deadline: the one timed wait in Baton.
///
/// - Events posted while nobody waits are kept, in order, for the next wait (so a lock grant that
///   lands between two waits is not lost); a `collapsing` rule drops an event that duplicates one
///   already kept (repeated "look again" notices, or every signal of a wake-up).
/// - Several tasks may wait at once; each posted event goes to the one that has waited longest.
/// - ``close()`` is final: every current and later wait returns ``Delivery/closed`` once the
///   kept events are drained (a latch: "the lease is lost", "the thread has exited").
///
/// `Mailbox<Void>` is a wake-up signal: see ``signal()`` and ``wait(upTo:)``.
public final class Mailbox<Event: Sendable>: Sendable {
    /// What a wait returns.
    public enum Delivery: Sendable {
        /// A posted event.
        case event(Event)
        /// The deadline passed first.
        case timedOut
        /// The waiting task was cancelled.
        case cancelled
        /// The mailbox was closed and holds nothing more.
        case closed
    }

    private struct State: Sendable {
        var kept: [Event] = []
        var closed = false
        /// Waiting tasks in arrival order, by id.
        var waiters: [(id: UInt64, continuation: CheckedContinuation<Delivery, Never>)] = []
        var nextID: UInt64 = 0

        mutating func takeWaiter(_ id: UInt64) -> CheckedContinuation<Delivery, Never>? {
            guard let index = waiters.firstIndex(where: { $0.id == id }) else { return nil }
            return waiters.remove(at: index).continuation
        }
    }

    private let state = LockedBox(State())
    private let isDuplicate: @Sendable (Event, Event) -> Bool

    /// Creates an empty mailbox.
    /// - Parameter isDuplicate: an event posted while nobody waits is dropped when this returns
    ///   `true` for it and any event already kept. `{ _, _ in false }` keeps everything.
    public init(collapsing isDuplicate: @escaping @Sendable (_ new: Event, _ kept: Event) -> Bool) {
        self.isDuplicate = isDuplicate
    }

    /// Hands `event` to the longest waiting task, or keeps it for the next wait. Ignored once
    /// the mailbox is closed.
    public func post(_ event: Event) {
        let waiter: CheckedContinuation<Delivery, Never>? = state.withLockedValue { state in
            guard !state.closed else { return nil }
            if !state.waiters.isEmpty { return state.waiters.removeFirst().continuation }
            if !state.kept.contains(where: { isDuplicate(event, $0) }) { state.kept.append(event) }
            return nil
        }
        waiter?.resume(returning: .event(event))
    }

    /// Closes the mailbox: every waiting task returns ``Delivery/closed`` now, every later wait
    /// once the kept events are drained. Idempotent.
    public func close() {
        let waiters = state.withLockedValue { state in
            state.closed = true
            defer { state.waiters = [] }
            return state.waiters
        }
        waiters.forEach { $0.continuation.resume(returning: .closed) }
    }

    /// Whether ``close()`` has been called.
    public var isClosed: Bool { state.withLockedValue { $0.closed } }

    /// Waits for the next event, at most `timeout` (`nil`: no deadline).
    ///
    /// Returns ``Delivery/cancelled`` as soon as the calling task is cancelled (at once if it
    /// already is and nothing is kept).
    public func next(timeout: Duration?) async -> Delivery {
        await receive(timeout: timeout, honouringCancellation: true)
    }

    private func receive(timeout: Duration?, honouringCancellation: Bool) async -> Delivery {
        let id = state.withLockedValue { state in
            state.nextID += 1
            return state.nextID
        }
        let wait = {
            await withCheckedContinuation { (continuation: CheckedContinuation<Delivery, Never>) in
                let immediate: Delivery? = self.state.withLockedValue { state in
                    if !state.kept.isEmpty { return .event(state.kept.removeFirst()) }
                    if state.closed { return .closed }
                    if honouringCancellation && Task.isCancelled { return .cancelled }
                    state.waiters.append((id, continuation))
                    return nil
                }
                if let immediate { return continuation.resume(returning: immediate) }
                if let timeout {
                    DispatchQueue.global().asyncAfter(deadline: .now() + max(0, timeout.seconds)) { [weak self] in
                        self?.end(waiter: id, with: .timedOut)
                    }
                }
            }
        }
        guard honouringCancellation else { return await wait() }
        return await withTaskCancellationHandler(operation: wait, onCancel: { end(waiter: id, with: .cancelled) })
    }

    /// Resumes one waiter, if it still waits (the timer and cancellation race with deliveries).
    private func end(waiter id: UInt64, with delivery: Delivery) {
        state.withLockedValue { $0.takeWaiter(id) }?.resume(returning: delivery)
    }
}

extension Mailbox where Event == Void {
    /// A wake-up signal: any number of signals while nobody waits wake the next wait once.
    public convenience init() {
        self.init(collapsing: { _, _ in true })
    }

    /// Wakes the current (or next) waiter.
    public func signal() {
        post(())
    }

    /// Waits until signalled or until `timeout` passes. Task cancellation does not cut the wait
    /// short, so a loop that paces itself with it never spins.
    public func wait(upTo timeout: Duration) async {
        _ = await receive(timeout: timeout, honouringCancellation: false)
    }
}
