import BatonLock
import BatonMetrics
import BatonRedis
import BatonSupport
import BatonTokens
import Foundation

/// The coordinator daemon's engine (`baton serve`): keeps every configured credential fresh,
/// answers workers' forced-refresh requests, and cooperates with other replicas through Redis.
///
/// - **One scheduler per process**: a ``TimerQueue`` of services ordered by their next refresh
///   time, one loop that wakes for the earliest, and at most
///   ``CoordinatorOptions/maxConcurrentRefreshes`` refreshes in flight, each a child task of the
///   run's task group. No task or timer per service.
/// - **Replicas**: every replica schedules every service (refresh time plus its own jitter); the
///   first to take the service lock refreshes, the others find the new record under the lock (or
///   learn of it at once from the change channel) and re-schedule.
/// - **Forced refreshes**: see ``RefreshRequestQueue``; a request naming version N refreshes only if
///   the stored record still has version ≤ N, at most once per
///   ``ServiceDefinition/forcedRefreshMinInterval`` per service across all replicas. A request
///   is satisfied by any record newer than the smaller of N and the version stored when it was
///   taken, so one request causes at most one provider call whatever version it names.
///
/// The work is split by job: scheduling (`Coordinator+Scheduling.swift`), refreshing
/// (`Coordinator+Refreshing.swift`) and the listeners' events (`Coordinator+Events.swift`).
public actor Coordinator {
    /// Counters since start, for logs, the demo and benchmarks.
    public struct Statistics: Sendable, Equatable {
        /// Refresh attempts that reached the refresh protocol.
        public var attempts = 0
        /// Refreshes this replica completed with a new token from the provider.
        public var refreshed = 0
        /// Attempts that found the token already fresh (another replica did it).
        public var alreadyFresh = 0
        /// Failed attempts.
        public var failures = 0
        /// Forced-refresh requests received.
        public var requestsReceived = 0
        /// Forced-refresh requests acknowledged.
        public var requestsAnswered = 0
    }

    /// What the coordinator knows of one service.
    struct ServiceState {
        var definition: ServiceDefinition
        var inFlight = false
        var failures = 0
        var blocked: BlockedReason?
        var pending: [PendingRequest] = []
        /// When this replica last handed the service's requests back to the shared list
        /// (server-clock ms), because it lacks the key of its secret.
        var handedBackAt: Int64?
    }

    /// The least time between two hand-backs of the same service's requests by one replica:
    /// bounds the round trips of a request that only replicas lacking its key keep taking.
    static let handBackPause: Duration = .seconds(1)

    /// How often a forced-refresh request may be handed back before a replica lacking the key
    /// answers it unserved (``handBack(_:)``).
    static let maximumHandBacks = 10

    let client: RedisClient
    let options: CoordinatorOptions
    let store: TokenStore
    let locks: LockService
    let refresher: TokenRefresher
    let log: StructuredLog
    let wakeup = Mailbox<Void>()
    let stopFlag = StopFlag()
    let loopTick = LockedBox(ContinuousClock.now)
    let requests: RefreshRequestQueue
    let listener: ChangeListener
    /// Alert webhooks (``CoordinatorOptions/alerts``), told of every attempt's outcome.
    let alerts: AlertNotifier?
    /// This replica's counters and histograms (`/metrics`).
    public nonisolated let metrics: ReplicaMetrics
    var clock = ServerClock()
    var queue = TimerQueue<String>()
    var states: [String: ServiceState] = [:]
    var inFlight = 0
    /// Counters since start.
    public internal(set) var statistics = Statistics()

    /// When the scheduler loop last went round: at least every 5 s while it runs (also while it
    /// retries Redis at start, and while it drains). A liveness signal (`/livez`), cheap from any thread.
    public nonisolated var lastLoopTick: ContinuousClock.Instant { loopTick.withLockedValue { $0 } }

    /// Creates a coordinator. Nothing runs until ``run()``.
    /// - Parameter spool: where rotated refresh tokens wait on disk until Redis has them; the
    ///   coordinator replays it at start and in every housekeeping round. `nil` keeps them in
    ///   memory only.
    /// - Parameter metrics: where attempts, forced requests and lock waits are counted. Default: a
    ///   registry of its own (nothing exports it).
    public init(
        client: RedisClient, options: CoordinatorOptions, services: [ServiceDefinition], log: StructuredLog,
        spool: RotatedTokenSpool? = nil, metrics: ReplicaMetrics = ReplicaMetrics(version: "unknown")
    ) throws {
        self.client = client
        self.options = options
        self.log = log
        self.metrics = metrics
        store = TokenStore(client: client, prefix: options.prefix, encryption: options.encryption)
        locks = try LockService(
            client: client, prefix: options.prefix, onWait: { [lockWait = metrics.lockWait] in lockWait.observe($0) })
        let log = log
        refresher = TokenRefresher(
            store: store, locks: locks, replica: options.replica, spool: spool,
            acknowledgement: options.replicaAcknowledgement,
            onPersistRetry: { service, error in
                log.log(.warn, "persist_retry", service: service, ["error_class": .text(String(describing: error))])
            },
            onReplicaAcknowledgement: { log.replicaAcknowledgement($0) })
        requests = RefreshRequestQueue(prefix: options.prefix, replica: options.replica, client: client)
        listener = ChangeListener(endpoint: client.endpoint, options: client.options.connection, prefix: options.prefix)
        let store = store
        alerts = options.alerts.map { AlertNotifier(options: $0, store: store, replica: options.replica, log: log) }
        for definition in services {
            states[definition.name] = ServiceState(definition: definition)
        }
        metrics.prepare(services: services.map(\.name))
    }

    /// Asks ``run()`` to stop: no new work is taken, refreshes in flight finish (up to
    /// ``CoordinatorOptions/shutdownGrace``), then `run()` returns. Safe from any thread.
    public nonisolated func stop() {
        stopFlag.set()
        wakeup.signal()
    }

    /// Replaces the set of services (SIGHUP): new ones are scheduled at once, removed ones are
    /// dropped (a refresh in flight for one finishes first), and every other one is re-read and
    /// re-scheduled under its new definition.
    public func reload(_ services: [ServiceDefinition]) async {
        let names = Set(services.map(\.name))
        var orphaned: [PendingRequest] = []
        for name in Array(states.keys) where !names.contains(name) {
            orphaned += states[name]?.pending ?? []
            states[name] = nil
            queue.remove(name)
        }
        // Requests for a service this replica no longer serves are acknowledged, not left behind.
        for request in orphaned { await answer(request.request) }
        metrics.prepare(services: services.map(\.name))
        var added: [String] = []
        for definition in services {
            if states[definition.name] == nil {
                states[definition.name] = ServiceState(definition: definition)
                added.append(definition.name)
            } else {
                states[definition.name]?.definition = definition
            }
        }
        log.log(
            .info, "config_reloaded", ["services": .number(Int64(states.count)), "added": .number(Int64(added.count))])
        // Every service is looked at again: a changed definition may unblock one (config_mismatch).
        await loadAndSchedule(states.keys.filter { states[$0]?.inFlight == false })
        wakeup.signal()
    }

    /// Runs until ``stop()``. Survives Redis outages: every step retries and logs.
    ///
    /// Refreshes and housekeeping are child tasks of one task group: on stop, the loop waits for
    /// refreshes in flight (woken as each finishes) up to ``CoordinatorOptions/shutdownGrace``,
    /// then cancels what is left and the group awaits it. A refresh holding a rotated token
    /// stops on cancellation only once the token is spooled to disk.
    public func run() async {
        log.log(.info, "starting", ["services": .number(Int64(states.count))])
        await startUp()
        requests.start(
            deliver: { [weak self] entry in
                guard let self else { return }
                Task { await self.received(entry) }
            },
            onError: { [log] error in
                log.log(.warn, "request_queue_error", ["error_class": .text(String(describing: error))])
            })
        listener.start(
            deliver: { [weak self] event in
                guard let self else { return }
                Task { await self.changed(event) }
            },
            onError: { [log] error in
                log.log(.warn, "change_listener_error", ["error_class": .text(String(describing: error))])
            })

        await withDiscardingTaskGroup { group in
            group.addTask { [self] in
                while !Task.isCancelled {
                    await housekeeping()
                    try? await Task.sleep(for: options.housekeepingInterval)
                }
            }
            if let alerts { group.addTask { await alerts.run() } }
            while !stopFlag.isSet {
                loopTick.withLockedValue { $0 = .now }
                dispatchDue(into: &group)
                let untilNext = queue.next.map { Duration.milliseconds(max(0, $0.due - clock.now)) } ?? .seconds(5)
                await wakeup.wait(upTo: min(untilNext, .seconds(5)))
            }

            log.log(.info, "stopping", ["in_flight": .number(Int64(inFlight))])
            // The consumer leaves its last BLMOVE before this replica's list is put back below, so no
            // request is taken after that.
            if await !requests.stop() { log.log(.warn, "request_consumer_slow_to_stop") }
            listener.stop()
            let deadline = ContinuousClock.now + options.shutdownGrace
            while inFlight > 0 && ContinuousClock.now < deadline {
                loopTick.withLockedValue { $0 = .now }
                await wakeup.wait(upTo: min(.seconds(5), deadline - ContinuousClock.now))
            }
            group.cancelAll()
        }
        // Requests this replica took but did not finish go back to the list for the others.
        _ = try? await requests.recoverAbandoned(includingOwn: true)
        _ = try? await requests.retire()
        locks.shutDown()
        log.log(
            .info, "stopped",
            ["refreshed": .number(Int64(statistics.refreshed)), "failures": .number(Int64(statistics.failures))])
    }

    private func startUp() async {
        var backoff = Backoff(base: .milliseconds(200), cap: .seconds(5))
        while !stopFlag.isSet {
            loopTick.withLockedValue { $0 = .now }
            do {
                clock = try await ServerClock.measure(with: store)
                try await replaySpool()
                try await requests.beat()
                do {
                    try await store.withdrawUnknownKeyReports(Array(states.keys), replica: options.replica)
                } catch {
                    // Only `baton status` and hand-backs read the reports, and they expire: not a reason to wait.
                    log.log(.warn, "unknown_key_withdraw_failed", ["error_class": .text(String(describing: error))])
                }
                let recovered = try await requests.recoverAbandoned(includingOwn: true)
                if recovered > 0 { log.log(.info, "requests_recovered", ["count": .number(Int64(recovered))]) }
                await loadAndSchedule(Array(states.keys))
                return
            } catch {
                let pause = backoff.next()
                log.log(
                    .warn, "redis_unavailable",
                    ["error_class": .text(String(describing: error)), "retry_ms": .number(pause.milliseconds)])
                try? await Task.sleep(for: pause)
            }
        }
    }

    /// Stores rotated tokens left in this host's spool (see ``BatonTokens/RotatedTokenSpool``).
    func replaySpool() async throws {
        let replayed = try await refresher.replaySpool()
        if replayed.stored + replayed.superseded + replayed.awaitingReplicas > 0 {
            log.log(
                .info, "spool_replayed",
                [
                    "stored": .number(Int64(replayed.stored)), "superseded": .number(Int64(replayed.superseded)),
                    "awaiting_replicas": .number(Int64(replayed.awaitingReplicas)),
                ])
        }
    }
}
