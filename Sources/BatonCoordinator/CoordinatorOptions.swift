import BatonSupport
import BatonTokens

/// How the coordinator runs.
public struct CoordinatorOptions: Sendable {
    /// This replica's id, written in records, events and logs (default in `baton serve`: `host:pid`).
    public var replica: String
    /// The key prefix. Default: `oauth`.
    public var prefix: String
    /// How refresh tokens are protected at rest (the configuration's `encryption`).
    public var encryption: SecretEncryption
    /// The most refreshes in flight at once; a hanging provider cannot hold more. Default: 32.
    public var maxConcurrentRefreshes: Int
    /// Each wake-up is the refresh time plus a random delay up to this, so that replicas do not
    /// all wake together (the first takes the lock, the others find the new record). Default: 1 s.
    public var scheduleJitter: Duration
    /// The first retry delay after a retryable failure; doubles per failure, full jitter. Default: 1 s.
    public var retryBase: Duration
    /// The longest retry delay. Default: 5 minutes.
    public var retryCap: Duration
    /// How long SIGTERM waits for refreshes in flight. Default: 20 seconds.
    public var shutdownGrace: Duration
    /// How often a service in `needs_seed` or `needs_reauth` is re-read in case a change
    /// notification was lost. Default: 5 minutes.
    public var blockedRecheck: Duration
    /// How often the replica renews its heartbeat and recovers requests stuck in processing lists
    /// (dead replicas' lists, and entries of its own list it never received). Default: 3 seconds.
    public var housekeepingInterval: Duration
    /// How many replicas must acknowledge a rotated refresh token (`persist_replicas`,
    /// `persist_timeout`). Default: ``BatonTokens/ReplicaAcknowledgement/none``.
    public var replicaAcknowledgement: ReplicaAcknowledgement
    /// Alert webhooks (the configuration's `alerts`); `nil` sends none. Default: `nil`.
    public var alerts: AlertOptions?

    /// Creates options; every parameter but `replica` and `encryption` has the default documented on
    /// its property.
    public init(
        replica: String, prefix: String = BatonDefaults.tokenPrefix, encryption: SecretEncryption,
        maxConcurrentRefreshes: Int = 32,
        scheduleJitter: Duration = .seconds(1),
        retryBase: Duration = .seconds(1), retryCap: Duration = .seconds(300), shutdownGrace: Duration = .seconds(20),
        blockedRecheck: Duration = .seconds(300), housekeepingInterval: Duration = .seconds(3),
        replicaAcknowledgement: ReplicaAcknowledgement = .none, alerts: AlertOptions? = nil
    ) {
        self.replica = replica
        self.prefix = prefix
        self.encryption = encryption
        self.maxConcurrentRefreshes = maxConcurrentRefreshes
        self.scheduleJitter = scheduleJitter
        self.retryBase = retryBase
        self.retryCap = retryCap
        self.shutdownGrace = shutdownGrace
        self.blockedRecheck = blockedRecheck
        self.housekeepingInterval = housekeepingInterval
        self.replicaAcknowledgement = replicaAcknowledgement
        self.alerts = alerts
    }
}
