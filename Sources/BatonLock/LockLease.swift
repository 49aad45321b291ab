import BatonRedis
import BatonSupport
import Foundation

/// A held lock: its owner token and fencing token, and a watchdog that extends the lease about
/// every third of its TTL until ``release()``.
///
/// If an extension finds the lock gone (its TTL ran out during a pause, or an operator forced
/// it), or Redis stays unreachable until the lease must have run out, the lease is marked lost
/// at once: ``isLost`` turns true and ``waitUntilLost()`` returns. ``DistributedLock/withLock(timeout:_:)``
/// uses that to cancel its body.
///
/// Dropping a lease without releasing it stops the watchdog at its next tick; the lock then
/// expires after its TTL.
public final class LockLease: Sendable {
    /// The lock's name.
    public let name: String
    /// This acquisition's owner token (`host:pid:random`), the value of the lock key while held.
    public let owner: String
    /// This acquisition's fencing token: pass it with every write the lock protects.
    public let fence: FencingToken
    let lock: DistributedLock
    private let state: LeaseState

    init(lock: DistributedLock, owner: String, fence: FencingToken, validFrom: ContinuousClock.Instant) {
        self.lock = lock
        self.name = lock.name
        self.owner = owner
        self.fence = fence
        self.state = LeaseState(validUntil: validFrom + lock.options.ttl)
    }

    /// How much of the lease is left by this process's reckoning (from when the last successful
    /// extension was *sent*, so never more than Redis grants). Zero or less once it ran out.
    public var remaining: Duration { state.validUntil - ContinuousClock.now }

    /// Whether the lease is known to be lost.
    public var isLost: Bool { state.lossError != nil }

    /// Why the lease was lost, once it is.
    public var lossError: LockError? { state.lossError }

    /// Returns when the lease is lost (immediately if it already is), or when the calling task is
    /// cancelled.
    public func waitUntilLost() async {
        await state.waitUntilLost()
    }

    /// Releases the lock and hands it to the next waiter, if any. Stops the watchdog.
    ///
    /// Runs even from a cancelled task (cleanup must happen).
    /// - Returns: `true` when released, `false` when the lock was no longer held by this lease.
    @discardableResult
    public func release() async throws -> Bool {
        guard state.markReleased() else { return false }
        let keys = lock.keys
        let owner = self.owner
        let client = lock.service.client
        let release = { @Sendable in
            try await client.run(LockScripts.release, keys: keys.scriptKeys, arguments: [owner, keys.wakeChannel])
        }
        // A cancelled task's Redis calls are dropped from the queue; cleanup must still happen.
        let reply = Task.isCancelled ? try await DistributedLock.uncancelled(release) : try await release()
        return reply.integer != 0
    }

    /// Extends the lease to a full TTL from now.
    /// - Returns: `true` when extended, `false` when this lease no longer holds the lock (the
    ///   lease is then marked lost).
    @discardableResult
    public func extend() async throws -> Bool {
        let sentAt = ContinuousClock.now
        let reply = try await lock.service.client.run(
            LockScripts.extend, keys: [lock.keys.lock], arguments: [owner, max(1, lock.options.ttl.milliseconds)]
        )
        if reply.integer == 1 {
            state.confirm(validUntil: sentAt + lock.options.ttl)
            return true
        }
        state.markLost(
            .lost(
                name: name, fence: fence,
                reason: "the lock is no longer held by this owner (its TTL ran out or it was force-released)"))
        return false
    }

    /// Starts the watchdog (unless ``LockOptions/autoRenew`` is off).
    ///
    /// The watchdog is a dispatch timer, not a sleeping task: a short critical section costs no
    /// work on Swift's cooperative threads, which matters for hand-over latency on small machines.
    func startRenewing() {
        guard lock.options.autoRenew else { return }
        scheduleRenewal(after: lock.options.effectiveRenewInterval)
    }

    private func scheduleRenewal(after pause: Duration) {
        DispatchQueue.global().asyncAfter(deadline: .now() + pause.seconds) { [weak self] in
            guard let self, self.state.isActive else { return }
            Task { await self.renew() }
        }
    }

    private func renew() async {
        let interval = lock.options.effectiveRenewInterval
        do {
            guard try await extend() else { return }
            scheduleRenewal(after: interval)
        } catch {
            if ContinuousClock.now >= state.validUntil {
                state.markLost(
                    .lost(
                        name: name, fence: fence,
                        reason: "Redis could not be reached to extend it before its TTL ran out (\(error))"))
                return
            }
            // Retry sooner while there is still time left on the lease.
            scheduleRenewal(after: min(interval, .milliseconds(250)))
        }
    }
}

/// The mutable part of a lease. Its loss is a closed ``Mailbox``: every waiter returns at once.
private final class LeaseState: Sendable {
    private struct Values: Sendable {
        var validUntil: ContinuousClock.Instant
        var lossError: LockError?
        var released = false
    }

    private let values: LockedBox<Values>
    private let loss = Mailbox<Void>()  // never posted to; closed when the lease is lost

    init(validUntil: ContinuousClock.Instant) {
        values = LockedBox(Values(validUntil: validUntil))
    }

    var validUntil: ContinuousClock.Instant { values.withLockedValue { $0.validUntil } }

    var lossError: LockError? { values.withLockedValue { $0.lossError } }

    func confirm(validUntil: ContinuousClock.Instant) {
        values.withLockedValue { $0.validUntil = max($0.validUntil, validUntil) }
    }

    /// Whether the watchdog should keep renewing: neither released nor lost.
    var isActive: Bool { values.withLockedValue { !$0.released && $0.lossError == nil } }

    /// - Returns: `false` if it was already released.
    func markReleased() -> Bool {
        values.withLockedValue { values in
            defer { values.released = true }
            return !values.released
        }
    }

    func markLost(_ error: LockError) {
        let first = values.withLockedValue { values in
            guard values.lossError == nil else { return false }
            values.lossError = error
            return true
        }
        if first { loss.close() }
    }

    /// Returns when the lease is lost or the calling task is cancelled.
    func waitUntilLost() async {
        _ = await loss.next(timeout: nil)
    }
}
