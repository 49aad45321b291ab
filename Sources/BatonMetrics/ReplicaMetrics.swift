/// How a refresh attempt ended, as `baton_refresh_total`'s `result` label says it.
public enum RefreshResult: String, Sendable, CaseIterable {
    /// This replica got a new token from the provider.
    case refreshed
    /// The stored token was already fresh (another replica refreshed it).
    case alreadyFresh = "already_fresh"
    /// The attempt failed (provider, Redis, or a state that needs a human other than a rejected grant).
    case failed
    /// The provider rejected the refresh token (`invalid_grant`): the service needs re-authorisation.
    case invalidGrant = "invalid_grant"
    /// Another holder kept the service lock longer than `lock_wait`.
    case busy
}

/// What became of a forced-refresh request this replica took, as
/// `baton_forced_refresh_requests_total`'s `outcome` label says it.
public enum ForcedRequestOutcome: String, Sendable, CaseIterable {
    /// Taken from the shared list.
    case taken
    /// Answered (acknowledged): satisfied, or left for a human (a blocked service), or naming a
    /// service this replica does not serve.
    case answered
    /// Dropped unread as malformed or oversized.
    case dropped
    /// Handed back to the shared list for another replica: this one lacks the key of the
    /// service's secret (`unknown_key`) and another live replica may have it.
    case handedBack = "handed_back"
    /// The acknowledgement (or hand-back) failed (the request goes round again).
    case ackFailed = "ack_failed"
}

/// The metrics one replica counts itself (the Redis-state gauges are ``FleetState``'s), on one
/// registry with the process metrics and `baton_build_info`.
public final class ReplicaMetrics: Sendable {
    /// The registry they are on; its ``MetricsRegistry/exposition(adding:)`` is the scrape text.
    public let registry: MetricsRegistry
    /// `baton_refresh_total{service,result}`.
    public let refreshes: Counter
    /// `baton_refresh_duration_seconds`: every attempt counted in `baton_refresh_total`.
    public let refreshDuration: Histogram
    /// `baton_provider_errors_total{service,class}`.
    public let providerErrors: Counter
    /// `baton_forced_refresh_requests_total{outcome}`.
    public let forcedRequests: Counter
    /// `baton_lock_wait_seconds`: each wait for a service lock, taken or timed out.
    public let lockWait: Histogram
    /// `baton_redis_command_duration_seconds`: request to reply on the shared pipelined connection.
    public let redisCommandDuration: Histogram

    /// Creates and registers the metrics, the process metrics and `baton_build_info{version}`.
    /// - Parameter version: Baton's version, for `baton_build_info`.
    public init(version: String, registry: MetricsRegistry = MetricsRegistry()) {
        self.registry = registry
        refreshes = registry.register(
            Counter(
                name: MetricName.refreshes, help: "Refresh attempts by this replica, by service and result.",
                labelNames: ["service", "result"]))
        refreshDuration = registry.register(
            Histogram(name: MetricName.refreshDuration, help: "Duration of this replica's refresh attempts in seconds.")
        )
        providerErrors = registry.register(
            Counter(
                name: MetricName.providerErrors,
                help: "Token endpoint errors seen by this replica, by service and class.",
                labelNames: ["service", "class"]))
        forcedRequests = registry.register(
            Counter(
                name: MetricName.forcedRequests, help: "Forced-refresh requests handled by this replica, by outcome.",
                labelNames: ["outcome"]))
        lockWait = registry.register(
            Histogram(name: MetricName.lockWait, help: "Time this replica waited for a service lock in seconds."))
        redisCommandDuration = registry.register(
            Histogram(
                name: MetricName.redisCommandDuration,
                help: "Round trip of this replica's pipelined Redis commands in seconds."))
        let buildInfo = registry.register(
            Gauge(name: MetricName.buildInfo, help: "Always 1; the version label is Baton's.", labelNames: ["version"]))
        buildInfo.set(1, version)
        registry.register(ProcessMetrics())
        for outcome in ForcedRequestOutcome.allCases { _ = forcedRequests.series(outcome.rawValue) }
    }

    /// Creates every `baton_refresh_total` series of `services` at 0, so that the first refresh
    /// of each shows as an increase.
    public func prepare(services: [String]) {
        for service in services {
            for result in RefreshResult.allCases { _ = refreshes.series(service, result.rawValue) }
        }
    }

    /// Counts one refresh attempt and its duration.
    public func countRefresh(service: String, result: RefreshResult, duration: Duration) {
        refreshes.increment(service, result.rawValue)
        refreshDuration.observe(duration)
    }

    /// Counts one forced-refresh request outcome.
    public func countForcedRequest(_ outcome: ForcedRequestOutcome) {
        forcedRequests.increment(outcome.rawValue)
    }
}
