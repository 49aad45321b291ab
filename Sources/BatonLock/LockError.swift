import BatonRedis

/// What can go wrong with a lock, apart from Redis errors (thrown as ``BatonRedis/RedisError``).
public enum LockError: Error, Sendable, CustomStringConvertible {
    /// The lock could not be had before the deadline. `holder` is who held it at the last look.
    case timedOut(name: String, waited: Duration, holder: String?)
    /// A lease was lost while the caller thought it held the lock: its TTL ran out before it
    /// could be extended (a pause, a slow call, Redis unreachable) or someone force-released it.
    case lost(name: String, fence: FencingToken, reason: String)
    /// With ``LockOptions/replicaAcknowledgements`` set, too few replicas confirmed the acquire
    /// in time; the lock was released again.
    case replicationNotConfirmed(name: String, acknowledged: Int, required: Int)
    /// Quorum mode could not lock a majority of the masters in time.
    case quorumNotReached(name: String, locked: Int, required: Int, errors: [String])
    /// A lock name or prefix that cannot become a Redis key.
    case invalidName(String, reason: String)

    public var description: String {
        switch self {
        case .timedOut(let name, let waited, let holder):
            let who = holder.map { " (held by \($0))" } ?? ""
            return
                "could not acquire lock '\(name)' within \(waited.shortDescription)\(who): wait longer, or check the holder with `baton lock status \(name)`"
        case .lost(let name, let fence, let reason):
            return
                "lost lock '\(name)' (fence \(fence.value)): \(reason); work done under it may overlap another holder's and fenced writes with this token will be rejected"
        case .replicationNotConfirmed(let name, let acknowledged, let required):
            return
                "lock '\(name)' was acquired but only \(acknowledged) of \(required) replicas confirmed it in time, so it was released: check replication (INFO replication)"
        case .quorumNotReached(let name, let locked, let required, let errors):
            let detail = errors.isEmpty ? "" : " (errors: \(errors.joined(separator: "; ")))"
            return "could not lock '\(name)' on a majority of masters: \(locked) of the \(required) needed\(detail)"
        case .invalidName(let name, let reason):
            return "invalid name '\(name)': \(reason)"
        }
    }
}
