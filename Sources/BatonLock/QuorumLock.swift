import BatonRedis
import BatonSupport
import Foundation

/// Redlock: one lock over N independent Redis masters, held when a majority granted it.
///
/// Acquire sends `SET key owner NX PX ttl` to every master at once. The lock is held when a
/// majority (N/2+1) said yes and time is left: validity = ttl − elapsed − drift, with the drift
/// allowance ttl × ``clockDriftFactor`` + 2 ms. Otherwise every master is released and the attempt
/// repeats after a random pause, until the timeout.
///
/// **No fencing.** The masters keep no common counter, so quorum mode hands out no fencing token:
/// a holder paused past its validity cannot be stopped from writing by this lock alone. Use it
/// only where overlap is harmless or the protected store checks something else; prefer the
/// single-master ``DistributedLock`` (with Sentinel and ``LockOptions/replicaAcknowledgements``)
/// when you need fencing. See docs/ARCHITECTURE.md.
public struct QuorumLock: Sendable {
    /// One client per independent master.
    public let clients: [RedisClient]
    /// The lock key names (only `lock` is used in quorum mode).
    public let keys: LockKeys
    /// The lease on each master. Default: 30 seconds.
    public let ttl: Duration
    /// Clock drift allowance as a fraction of ``ttl``. Default: 0.01.
    public let clockDriftFactor: Double
    /// The longest random pause between attempts. Default: 200 ms.
    public let maxRetryDelay: Duration

    /// Creates a quorum lock. Give each client a short command timeout: one slow master must not
    /// eat the validity.
    public init(
        clients: [RedisClient], prefix: String = BatonDefaults.lockPrefix, name: String, ttl: Duration = .seconds(30),
        clockDriftFactor: Double = 0.01, maxRetryDelay: Duration = .milliseconds(200)
    ) throws {
        precondition(!clients.isEmpty, "quorum mode needs at least one master")
        self.clients = clients
        self.keys = try LockKeys(prefix: prefix, name: name)
        self.ttl = ttl
        self.clockDriftFactor = clockDriftFactor
        self.maxRetryDelay = maxRetryDelay
    }

    /// How many masters must grant the lock.
    public var quorum: Int { clients.count / 2 + 1 }

    /// Takes the lock on a majority of masters, retrying until `timeout`.
    /// - Throws: ``LockError/quorumNotReached(name:locked:required:errors:)``.
    public func acquire(timeout: Duration) async throws -> QuorumLease {
        let clock = ContinuousClock()
        let deadline = clock.now + timeout
        var lastLocked = 0
        var lastErrors: [String] = []
        repeat {
            let owner = LockOwner.generate()
            let start = clock.now
            let outcomes = await onEveryMaster { client in
                try await client.set(keys.lock, to: owner, expiry: ttl, condition: .ifNotExists)
            }
            let locked = outcomes.filter { (try? $0.get()) == true }.count
            let drift = ttl * clockDriftFactor + .milliseconds(2)
            let validity = ttl - (clock.now - start) - drift
            if locked >= quorum && validity > .zero {
                return QuorumLease(lock: self, owner: owner, validity: validity)
            }
            lastLocked = locked
            lastErrors = outcomes.compactMap {
                if case .failure(let error) = $0 { return String(describing: error) } else { return nil }
            }
            await releaseEverywhere(owner: owner)
            try await Task.sleep(for: .milliseconds(Int64.random(in: 0...max(1, maxRetryDelay.milliseconds))))
        } while clock.now < deadline
        throw LockError.quorumNotReached(name: keys.name, locked: lastLocked, required: quorum, errors: lastErrors)
    }

    func releaseEverywhere(owner: String) async {
        let keys = self.keys
        _ = await onEveryMaster { client in
            try await client.run(RedisScript.compareAndDelete, keys: [keys.lock], arguments: [owner])
        }
    }

    func onEveryMaster<T: Sendable>(_ work: @escaping @Sendable (RedisClient) async throws -> T) async -> [Result<
        T, any Error
    >] {
        await withTaskGroup(of: Result<T, any Error>.self) { group in
            for client in clients {
                group.addTask {
                    do { return .success(try await work(client)) } catch { return .failure(error) }
                }
            }
            var results: [Result<T, any Error>] = []
            for await result in group { results.append(result) }
            return results
        }
    }
}

/// A lock held on a majority of masters.
public struct QuorumLease: Sendable {
    /// The lock this lease belongs to.
    public let lock: QuorumLock
    /// The owner token set on each master.
    public let owner: String
    /// How long the lock is safely held, counted from when acquire returned (already reduced by
    /// the time acquiring took and the drift allowance).
    public let validity: Duration

    /// Releases the lock on every master (compare-and-delete on the owner token).
    public func release() async {
        await lock.releaseEverywhere(owner: owner)
    }

    /// Extends the lease on every master that still has it.
    /// - Returns: whether a majority confirmed the extension.
    public func extend() async -> Bool {
        let keys = lock.keys
        let ttl = max(1, lock.ttl.milliseconds)
        let owner = self.owner
        let outcomes = await lock.onEveryMaster { client in
            try await client.run(LockScripts.extend, keys: [keys.lock], arguments: [owner, ttl]).integer == 1
        }
        return outcomes.filter { (try? $0.get()) == true }.count >= lock.quorum
    }
}
