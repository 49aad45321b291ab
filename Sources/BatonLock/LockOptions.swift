/// How a lock is held and waited for.
public struct LockOptions: Sendable, Hashable {
    /// The lease: how long the lock lasts unless extended. A crashed holder blocks others for at
    /// most this long. Default: 30 seconds.
    public var ttl: Duration
    /// Whether a held lock is extended automatically (every ``renewInterval``) until released.
    /// Default: `true`.
    public var autoRenew: Bool
    /// How often the watchdog extends the lease. `nil` means a third of ``ttl`` (the default),
    /// which leaves two more tries before the lease runs out.
    public var renewInterval: Duration?
    /// How long a waiter's place in the queue lasts without being refreshed. A waiter refreshes
    /// it at least twice per period while it waits; a waiter that died keeps its place (and
    /// blocks those behind it) for at most this long. Default: 5 seconds.
    public var waiterLease: Duration
    /// With Sentinel or replicas: after acquiring, wait until this many replicas have the lock
    /// (`WAIT`); if fewer confirm within ``replicaTimeout``, release it and fail, so a failover
    /// cannot hand the same lock to two holders. Default: 0 (no confirmation).
    public var replicaAcknowledgements: Int
    /// How long to wait for replica confirmation. Default: 500 ms.
    public var replicaTimeout: Duration

    /// Creates options; every parameter has the default documented on its property.
    public init(
        ttl: Duration = .seconds(30),
        autoRenew: Bool = true,
        renewInterval: Duration? = nil,
        waiterLease: Duration = .seconds(5),
        replicaAcknowledgements: Int = 0,
        replicaTimeout: Duration = .milliseconds(500)
    ) {
        self.ttl = ttl
        self.autoRenew = autoRenew
        self.renewInterval = renewInterval
        self.waiterLease = waiterLease
        self.replicaAcknowledgements = replicaAcknowledgements
        self.replicaTimeout = replicaTimeout
    }

    /// The watchdog's period.
    var effectiveRenewInterval: Duration { renewInterval ?? ttl / 3 }
}
