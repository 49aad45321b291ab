import BatonMetrics
import BatonTokens

extension ServiceStatus {
    /// A service's status from what Redis holds, in the order `baton status` decides it: a corrupt
    /// record first, then a key some replica lacks, a client mismatch, replica acknowledgements
    /// awaited, the record's own status (`expired` for an `ok` record past its expiry), and
    /// without a record `seeded` or `needs_seed`.
    /// - Parameters:
    ///   - record: the record, when it reads.
    ///   - corruptRecord: whether the record key holds something that is not a record.
    ///   - hasSecret: whether a refresh token is stored.
    ///   - lacksKey: whether a replica (or this host) lacks the key the stored token is sealed under.
    ///   - clientMismatch: whether the stored token was issued to another client than the configured one.
    ///   - awaitingReplicas: whether a rotated token waits for replica acknowledgements.
    ///   - now: Redis's time in milliseconds.
    public static func classify(
        record: TokenRecord?, corruptRecord: Bool, hasSecret: Bool, lacksKey: Bool, clientMismatch: Bool,
        awaitingReplicas: Bool, now: Int64
    ) -> ServiceStatus {
        if corruptRecord { return .corruptRecord }
        if lacksKey { return .unknownKey }
        if clientMismatch { return .configMismatch }
        if awaitingReplicas { return .awaitingReplicas }
        guard let record else { return hasSecret ? .seeded : .needsSeed }
        switch record.status {
        case .ok: return record.isExpired(at: now) ? .expired : .ok
        case .refreshingFailed: return .refreshingFailed
        case .needsReauth: return .needsReauth
        }
    }
}
