import BatonRedis
import Foundation

/// A named lock in Redis: `SET NX PX` semantics with an owner token, a fencing counter, a FIFO
/// queue of waiters woken by direct hand-over, and lease renewal.
///
/// The protocol (scripts in `LockScripts`) is described in docs/ARCHITECTURE.md.
public struct DistributedLock: Sendable {
    /// The service this lock belongs to.
    public let service: LockService
    /// The lock's Redis keys.
    public let keys: LockKeys
    /// How the lock is held and waited for.
    public let options: LockOptions

    /// The lock's name.
    public var name: String { keys.name }

    // MARK: - Acquiring

    /// Takes the lock if it is free right now (and nobody is queued for it).
    /// - Returns: the lease, or `nil` when someone else holds it.
    public func tryAcquire() async throws -> LockLease? {
        let owner = LockOwner.generate()
        let started = ContinuousClock.now
        guard case .acquired(let fence) = try await attempt(owner: owner, queue: false) else { return nil }
        return try await confirmed(LockLease(lock: self, owner: owner, fence: fence, validFrom: started))
    }

    /// Takes the lock, waiting up to `timeout` for it.
    ///
    /// A waiter joins the lock's FIFO queue and sleeps until the releasing holder hands the lock
    /// to it (a pub/sub grant), re-checking at the latest when the holder's TTL would run out
    /// (so a crashed holder's expiry is noticed at once) and at least twice per
    /// ``LockOptions/waiterLease``, with jitter, in case a notification was lost.
    ///
    /// - Throws: ``LockError/timedOut(name:waited:holder:)`` after `timeout`;
    ///   `CancellationError` when the task is cancelled; ``BatonRedis/RedisError`` when Redis fails.
    public func acquire(timeout: Duration) async throws -> LockLease {
        guard let onWait = service.onWait else { return try await waitForLease(timeout: timeout) }
        let start = ContinuousClock.now
        defer { onWait(ContinuousClock.now - start) }
        return try await waitForLease(timeout: timeout)
    }

    /// ``acquire(timeout:)`` itself.
    private func waitForLease(timeout: Duration) async throws -> LockLease {
        let owner = LockOwner.generate()
        let clock = ContinuousClock()
        let start = clock.now
        let deadline = start + timeout
        var attemptStart = clock.now
        if case .acquired(let fence) = try await attempt(owner: owner, queue: false) {
            return try await confirmed(LockLease(lock: self, owner: owner, fence: fence, validFrom: attemptStart))
        }
        guard timeout > .zero else { throw await timedOut(after: timeout) }

        try await service.wakeups.ensureListening()
        let waiter = service.wakeups.register(owner: owner)
        defer { service.wakeups.unregister(owner: owner) }
        while true {
            attemptStart = clock.now
            let remainingTTL: Duration
            switch try await attempt(owner: owner, queue: true) {
            case .acquired(let fence):
                return try await confirmed(LockLease(lock: self, owner: owner, fence: fence, validFrom: attemptStart))
            case .busy(let ttl):
                remainingTTL = ttl
            }
            let remaining = deadline - clock.now
            if remaining <= .zero {
                if let fence = try await withdraw(owner: owner) {
                    return try await confirmed(LockLease(lock: self, owner: owner, fence: fence, validFrom: clock.now))
                }
                throw await timedOut(after: clock.now - start)
            }
            switch await waiter.wait(upTo: fallbackWait(remaining: remaining, lockTTL: remainingTTL)) {
            case .granted(let fence):
                return try await confirmed(LockLease(lock: self, owner: owner, fence: fence, validFrom: clock.now))
            case .timedOut, .reconnected:
                continue
            case .cancelled:
                if let fence = try await Self.uncancelled({ try await withdraw(owner: owner) }) {
                    let lease = LockLease(lock: self, owner: owner, fence: fence, validFrom: clock.now)
                    _ = try? await lease.release()
                }
                throw CancellationError()
            }
        }
    }

    /// Acquires the lock, runs `body` while renewing the lease, and releases the lock on every
    /// exit path (return, throw, cancellation).
    ///
    /// If the lease is lost while `body` runs, `body`'s task is cancelled and
    /// ``LockError/lost(name:fence:reason:)`` is thrown.
    public func withLock<T: Sendable>(timeout: Duration, _ body: @escaping @Sendable (LockLease) async throws -> T)
        async throws -> T
    {
        let lease = try await acquire(timeout: timeout)
        let outcome: Result<T, any Error>
        do {
            outcome = .success(
                try await withThrowingTaskGroup(of: T?.self) { group in
                    group.addTask { try await body(lease) }
                    group.addTask {
                        await lease.waitUntilLost()
                        throw lease.lossError ?? LockError.lost(name: name, fence: lease.fence, reason: "lease lost")
                    }
                    defer { group.cancelAll() }
                    while let result = try await group.next() {
                        if let value = result { return value }
                    }
                    throw CancellationError()
                })
        } catch {
            outcome = .failure(error)
        }
        _ = try? await lease.release()
        return try outcome.get()
    }

    // MARK: - Inspecting

    /// What Redis says about the lock right now.
    public func status() async throws -> LockStatus {
        let replies = try await service.client.pipeline([
            RedisCommand("GET", keys.lock), RedisCommand("PTTL", keys.lock),
            RedisCommand("GET", keys.fence), RedisCommand("LLEN", keys.queue),
        ])
        let holder = replies[0].string
        let ttl = replies[1].integer ?? -2
        return LockStatus(
            name: name,
            holder: holder,
            holderLabel: holder.map(LockOwner.label(of:)),
            remainingTTL: ttl >= 0 ? .milliseconds(ttl) : nil,
            fence: replies[2].integer.map(FencingToken.init),
            waiters: Int(replies[3].integer ?? 0)
        )
    }

    /// Releases the lock whoever holds it (for operators: the holder will find out at its next
    /// renewal and its fenced writes keep being checked). The lock goes to the next waiter, as on
    /// a normal release.
    /// - Returns: the owner token that was released, or `nil` when the lock was free.
    public func forceRelease() async throws -> String? {
        for _ in 0..<5 {
            guard let holder = try await service.client.get(keys.lock).map({ String(decoding: $0, as: UTF8.self) })
            else { return nil }
            let reply = try await service.client.run(
                LockScripts.release, keys: keys.scriptKeys, arguments: [holder, keys.wakeChannel])
            if reply.integer != 0 { return holder }
            // The holder changed between the read and the release: look again.
        }
        return nil
    }

    /// Writes `value` into the hash `key` (fields `fence`, `value`) only if `fence` is not older
    /// than the newest fence that hash has seen: a stale holder can never overwrite newer state.
    /// - Returns: `true` when written, `false` when rejected as stale.
    public func fencedSet(_ key: String, value: some RedisArgumentConvertible, fence: FencingToken) async throws -> Bool
    {
        let reply = try await service.client.run(LockScripts.fencedSet, keys: [key], arguments: [fence.value, value])
        return reply.array?.first?.integer == 1
    }

    // MARK: - Internals

    enum Attempt {
        case acquired(FencingToken)
        case busy(Duration)
    }

    private func attempt(owner: String, queue: Bool) async throws -> Attempt {
        let reply = try await service.client.run(
            LockScripts.acquire, keys: keys.scriptKeys,
            arguments: [owner, max(1, options.ttl.milliseconds), queue ? max(1, options.waiterLease.milliseconds) : 0]
        )
        guard let parts = reply.array, parts.count == 2, let flag = parts[0].integer, let value = parts[1].integer
        else {
            throw RedisError.unexpectedReply(command: "lock acquire script", reply: reply.description)
        }
        return flag == 1 ? .acquired(FencingToken(value)) : .busy(.milliseconds(value))
    }

    private func withdraw(owner: String) async throws -> FencingToken? {
        let reply = try await service.client.run(LockScripts.withdraw, keys: keys.scriptKeys, arguments: [owner])
        guard let parts = reply.array, parts.first?.integer == 1, let fence = parts.last?.integer else { return nil }
        return FencingToken(fence)
    }

    /// How long to sleep before looking again when no grant arrives: until the holder's TTL
    /// would run out (+2 ms), at most half the waiter lease, never past the deadline, plus up
    /// to 10% jitter so waiters that time out together do not retry together.
    private func fallbackWait(remaining: Duration, lockTTL: Duration) -> Duration {
        var wait = min(remaining, options.waiterLease / 2)
        if lockTTL >= .zero {
            wait = min(wait, lockTTL + .milliseconds(2))
        } else if lockTTL == .milliseconds(-2) {
            // Free, but live waiters are ahead of us: they are about to take it.
            wait = min(wait, .milliseconds(20))
        }
        let jitter = Double.random(in: 0...0.1) * wait.seconds
        return min(remaining, wait + .milliseconds(Int64(jitter * 1000)))
    }

    /// With ``LockOptions/replicaAcknowledgements``: extend once and `WAIT` on the same
    /// connection, so the lock's latest write is on enough replicas before the caller proceeds.
    private func confirmed(_ lease: LockLease) async throws -> LockLease {
        let required = options.replicaAcknowledgements
        guard required > 0 else {
            lease.startRenewing()
            return lease
        }
        let keys = self.keys
        let ttl = max(1, options.ttl.milliseconds)
        let waitTimeout = options.replicaTimeout
        let owner = lease.owner
        let acknowledged = try await service.client.withConnection(routingKey: keys.lock) { connection in
            try connection.run(LockScripts.extend, keys: [keys.lock], arguments: [owner, ttl])
            // A connection replaced since the extend confirms nothing (0 acknowledgements).
            let generation = connection.generation
            return try connection.waitForReplicas(required, timeout: waitTimeout, writtenIn: generation)
        }
        guard acknowledged >= required else {
            _ = try? await lease.release()
            throw LockError.replicationNotConfirmed(name: name, acknowledged: acknowledged, required: required)
        }
        lease.startRenewing()
        return lease
    }

    private func timedOut(after waited: Duration) async -> LockError {
        let holder = try? await service.client.get(keys.lock).map {
            LockOwner.label(of: String(decoding: $0, as: UTF8.self))
        }
        return .timedOut(name: name, waited: waited, holder: holder ?? nil)
    }

    /// Runs Redis work that must happen even though the current task was cancelled (cleanup).
    static func uncancelled<T: Sendable>(_ work: @escaping @Sendable () async throws -> T) async throws -> T {
        try await Task.detached { try await work() }.value
    }
}

/// A snapshot of a lock for operators (`baton lock status`).
public struct LockStatus: Sendable, Equatable {
    /// The lock's name.
    public let name: String
    /// The holder's full owner token, or `nil` when free.
    public let holder: String?
    /// The holder's readable `host:pid`.
    public let holderLabel: String?
    /// How long the current lease has left.
    public let remainingTTL: Duration?
    /// The last fencing token handed out (the holder's, when held).
    public let fence: FencingToken?
    /// How many waiters are queued.
    public let waiters: Int
}
