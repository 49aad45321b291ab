import BatonCoordinator
import BatonMetrics
import BatonRedis
import BatonSupport

/// `baton serve`'s `/metrics`: this replica's counters and histograms, the process metrics, and the
/// state of every service read from Redis at scrape time (any replica shows the whole fleet).
///
/// The Redis read is bounded by `redisTimeout`: when Redis is down or slow the scrape still
/// answers at once, with `baton_redis_up 0` and without the Redis-state gauges (never stale
/// ones). Cost: see "Metrics" in docs/ARCHITECTURE.md (about 4 pipelined round trips per 500
/// services).
enum MetricsEndpoint {
    /// The answer to one scrape.
    typealias Handler = @Sendable () async -> (contentType: String, body: [UInt8])

    /// The `/metrics` handler for `coordinator`, whose counters are in `metrics`.
    /// - Parameter redisTimeout: the longest a scrape waits for the Redis-state read. Default: 2 s
    ///   (under Prometheus's default 10 s scrape timeout).
    static func handler(coordinator: Coordinator, redisTimeout: Duration = .seconds(2)) -> Handler {
        { await scrape(coordinator: coordinator, redisTimeout: redisTimeout) }
    }

    /// The scrape text and its content type.
    static func scrape(coordinator: Coordinator, redisTimeout: Duration) async -> (contentType: String, body: [UInt8]) {
        let state = await fleetState(of: coordinator, timeout: redisTimeout)
        let extra = (state?.families() ?? []) + [FleetState.redisUp(state != nil)]
        return (ExpositionFormat.contentType, Array(coordinator.metrics.registry.exposition(adding: extra).utf8))
    }

    /// The coordinator's ``Coordinator/fleetState()``, or `nil` when it fails or takes longer than
    /// `timeout` (the read goes on in the background and its late answer is dropped).
    static func fleetState(of coordinator: Coordinator, timeout: Duration) async -> FleetState? {
        let answer = Mailbox<FleetState?>(collapsing: { _, _ in false })
        Task {
            answer.post(try? await coordinator.fleetState())
            answer.close()
        }
        if case .event(let state) = await answer.next(timeout: timeout) { return state }
        return nil
    }

    /// The Redis client option that times every pipelined command into
    /// `baton_redis_command_duration_seconds`.
    static func redisObserver(_ metrics: ReplicaMetrics) -> RedisCommandObserver {
        let series = metrics.redisCommandDuration.series()
        return RedisCommandObserver { _, roundTrip in series.observe(roundTrip) }
    }
}
