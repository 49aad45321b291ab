import BatonLock
import BatonRedis
import BatonSupport
import BatonTokens
import Foundation

/// The coordinator daemon's engine (`baton serve`): keeps every configured credential fresh,
/// answers workers' forced-refresh requests, and cooperates with other replicas through Redis.
///
/// - **One scheduler per process**: a ``TimerQueue`` of services ordered by their next refresh
///   time, one loop that wakes for the earliest, and at most
///   ``CoordinatorOptions/maxConcurrentRefreshes`` refreshes in flight. No task or timer per service.
/// - **Replicas**: every replica schedules every service (refresh time plus its own jitter); the
///   first to take the service lock refreshes, the others find the new record under the lock (or
///   learn of it at once from the change channel) and re-schedule.
/// - **Forced refreshes**: see ``RefreshRequestQueue``; a request naming version N refreshes only if
///   the stored record still has version ≤ N, at most once per
///   ``ServiceDefinition/forcedRefreshMinInterval`` per service across all replicas. A request
///   is satisfied by any record newer than the smaller of N and the version stored when it was
///   taken, so one request causes at most one provider call whatever version it names.
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

    private struct ServiceState {
        var definition: ServiceDefinition
        var inFlight = false
        var failures = 0
        var blocked: String?
        var pending: [PendingRequest] = []
    }

    /// A request waiting for a record newer than its target.
    private struct PendingRequest: Sendable {
        let request: RefreshRequest
        /// Satisfied by any record whose version is greater: the smaller of the version the
        /// worker named and the version stored when the request was taken; `nil` until known
        /// (the record could not be read when the request arrived).
        var target: Int64?

        func isSatisfied(by record: TokenRecord) -> Bool {
            target.map { record.version > $0 } ?? false
        }

        /// The target once the stored version `observed` is known.
        func resolved(observed: Int64) -> PendingRequest {
            PendingRequest(request: request, target: min(target ?? observed, observed))
        }
    }

    private enum Outcome: Sendable {
        /// `observed`: the version stored when the attempt began (resolves requests' targets).
        case fresh(TokenRecord, refreshedHere: Bool, observed: Int64)
        case deferred(Duration)
        case blocked(String, ackRequests: Bool)
        case retry(String, after: Duration?)
    }

    private let client: RedisClient
    private let options: CoordinatorOptions
    private let store: TokenStore
    private let locks: LockService
    private let refresher: TokenRefresher
    private let log: StructuredLog
    private let clock = ServerClock()
    private let wakeup = Mailbox<Void>()
    private let stopFlag = StopFlag()
    private let requests: RefreshRequestQueue
    private let listener: ChangeListener
    private var queue = TimerQueue<String>()
    private var states: [String: ServiceState] = [:]
    private var inFlight = 0
    private(set) public var statistics = Statistics()

    /// Creates a coordinator. Nothing runs until ``run()``.
    /// - Parameter spool: where rotated refresh tokens wait on disk until Redis has them; the
    ///   coordinator replays it at start. `nil` keeps them in memory only.
    public init(client: RedisClient, options: CoordinatorOptions, services: [ServiceDefinition], log: StructuredLog,
                spool: RotatedTokenSpool? = nil) throws {
        self.client = client
        self.options = options
        self.log = log
        store = TokenStore(client: client, prefix: options.prefix)
        locks = try LockService(client: client, prefix: options.prefix)
        let log = log
        refresher = TokenRefresher(store: store, locks: locks, replica: options.replica, spool: spool) { service, error in
            log.log(.warn, "persist_retry", service: service, ["error_class": .text(String(describing: error))])
        }
        requests = RefreshRequestQueue(prefix: options.prefix, replica: options.replica, client: client)
        listener = ChangeListener(endpoint: client.endpoint, options: client.options.connection, prefix: options.prefix)
        for definition in services {
            states[definition.name] = ServiceState(definition: definition)
        }
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
        var added: [String] = []
        for definition in services {
            if states[definition.name] == nil {
                states[definition.name] = ServiceState(definition: definition)
                added.append(definition.name)
            } else {
                states[definition.name]?.definition = definition
            }
        }
        log.log(.info, "config_reloaded", ["services": .number(Int64(states.count)), "added": .number(Int64(added.count))])
        // Every service is looked at again: a changed definition may unblock one (config_mismatch).
        await loadAndSchedule(states.keys.filter { states[$0]?.inFlight == false })
        wakeup.signal()
    }

    /// Runs until ``stop()``. Survives Redis outages: every step retries and logs.
    public func run() async {
        log.log(.info, "starting", ["services": .number(Int64(states.count))])
        await startUp()
        requests.start(deliver: { [weak self] entry in
            guard let self else { return }
            Task { await self.received(entry) }
        }, onError: { [log] error in
            log.log(.warn, "request_queue_error", ["error_class": .text(String(describing: error))])
        })
        listener.start(deliver: { [weak self] event in
            guard let self else { return }
            Task { await self.changed(event) }
        }, onError: { [log] error in
            log.log(.warn, "change_listener_error", ["error_class": .text(String(describing: error))])
        })
        let housekeeping = Task { [weak self] in
            while !Task.isCancelled {
                await self?.housekeeping()
                try? await Task.sleep(for: self?.options.housekeepingInterval ?? .seconds(3))
            }
        }

        while !stopFlag.isSet {
            dispatchDue()
            let untilNext = queue.next.map { Duration.milliseconds(max(0, $0.due - clock.now)) } ?? .seconds(5)
            await wakeup.wait(upTo: min(untilNext, .seconds(5)))
        }

        log.log(.info, "stopping", ["in_flight": .number(Int64(inFlight))])
        // The consumer leaves its last BLMOVE before this replica's list is put back below, so no
        // request is taken after that.
        if await !requests.stop() { log.log(.warn, "request_consumer_slow_to_stop") }
        listener.stop()
        housekeeping.cancel()
        let deadline = ContinuousClock.now + options.shutdownGrace
        while inFlight > 0 && ContinuousClock.now < deadline {
            await wakeup.wait(upTo: .milliseconds(100))
        }
        // Requests this replica took but did not finish go back to the list for the others.
        _ = try? await requests.recoverAbandoned(includingOwn: true)
        _ = try? await requests.retire()
        locks.shutDown()
        log.log(.info, "stopped", ["refreshed": .number(Int64(statistics.refreshed)), "failures": .number(Int64(statistics.failures))])
    }

    // MARK: - Start-up and scheduling

    private func startUp() async {
        var backoff = Backoff(base: .milliseconds(200), cap: .seconds(5))
        while !stopFlag.isSet {
            do {
                try await clock.synchronize(with: store)
                let replayed = try await refresher.replaySpool()
                if replayed.stored + replayed.superseded > 0 {
                    log.log(.info, "spool_replayed", ["stored": .number(Int64(replayed.stored)), "superseded": .number(Int64(replayed.superseded))])
                }
                try await requests.beat()
                let recovered = try await requests.recoverAbandoned(includingOwn: true)
                if recovered > 0 { log.log(.info, "requests_recovered", ["count": .number(Int64(recovered))]) }
                await loadAndSchedule(Array(states.keys))
                return
            } catch {
                let pause = backoff.next()
                log.log(.warn, "redis_unavailable", ["error_class": .text(String(describing: error)), "retry_ms": .number(pause.milliseconds)])
                try? await Task.sleep(for: pause)
            }
        }
    }

    /// Reads the records of `services` and schedules each at its refresh time (plus jitter).
    private func loadAndSchedule(_ services: [String]) async {
        do {
            let records = try await store.records(services)
            for service in services where states[service] != nil && states[service]?.inFlight == false {
                await settle(service, record: records[service])
            }
        } catch {
            log.log(.warn, "reload_failed", ["error_class": .text(String(describing: error))])
            for service in services where states[service] != nil { queue.schedule(service, at: clock.now + 1000) }
        }
        wakeup.signal()
    }

    /// Answers the pending requests `record` satisfies, then (unless a refresh is in flight)
    /// schedules the service with ``schedule(_:record:)``.
    private func settle(_ service: String, record: TokenRecord?) async {
        if let record, let pending = states[service]?.pending, !pending.isEmpty {
            states[service]?.pending = pending.filter { !$0.isSatisfied(by: record) }
            for done in pending where done.isSatisfied(by: record) { await answer(done.request) }
        }
        guard let state = states[service], !state.inFlight else { return }
        schedule(service, record: record)
    }

    /// Schedules the service: **now** while requests wait for it (they must never wait for the
    /// token's ordinary refresh time, minutes away), else at its refresh time plus jitter.
    private func schedule(_ service: String, record: TokenRecord?) {
        guard let state = states[service] else { return }
        let jitter = Int64.random(in: 0...max(0, options.scheduleJitter.milliseconds))
        let now = clock.now
        guard let record else {
            states[service]?.blocked = nil
            queue.schedule(service, at: now + (state.pending.isEmpty ? jitter : 0))
            return
        }
        if record.status == .needsReauth {
            states[service]?.blocked = "needs_reauth"
            queue.schedule(service, at: state.pending.isEmpty ? now + options.blockedRecheck.milliseconds : now)
            return
        }
        states[service]?.blocked = nil
        guard state.pending.isEmpty else {
            queue.schedule(service, at: now)
            return
        }
        let due = record.status == .ok ? record.refreshDueAt(refreshBuffer: state.definition.settings.refreshBuffer) : now
        queue.schedule(service, at: max(due, now) + jitter)
    }

    private func dispatchDue() {
        let capacity = options.maxConcurrentRefreshes - inFlight
        guard capacity > 0 else { return }
        for service in queue.popDue(at: clock.now, limit: capacity) {
            guard var state = states[service], !state.inFlight else { continue }
            if state.blocked != nil && state.pending.isEmpty {
                // A blocked service is only re-read (a lost notification), never refreshed.
                Task { await self.recheck(service) }
                continue
            }
            state.inFlight = true
            let pending = state.pending
            state.pending = []
            states[service] = state
            inFlight += 1
            statistics.attempts += 1
            let definition = state.definition
            Task {
                let started = ContinuousClock.now
                let outcome = await self.perform(definition, pending: pending)
                await self.finished(service, outcome: outcome, pending: pending, duration: ContinuousClock.now - started)
            }
        }
    }

    private func recheck(_ service: String) async {
        do {
            let record = try await store.record(service)
            let secret = try await store.secret(service)
            if record == nil && secret == nil && states[service]?.definition.settings.usesRefreshToken == true
                && states[service]?.pending.isEmpty == true {
                queue.schedule(service, at: clock.now + options.blockedRecheck.milliseconds)
            } else {
                await settle(service, record: record)
            }
        } catch {
            queue.schedule(service, at: clock.now + 5000)
        }
        wakeup.signal()
    }

    // MARK: - Refreshing

    /// Runs the refresh protocol for one service, outside the actor.
    private nonisolated func perform(_ definition: ServiceDefinition, pending: [PendingRequest]) async -> Outcome {
        var request = TokenRefresher.Request.fresh
        do {
            let before = try await store.record(definition.name)
            let observed = before?.version ?? 0
            if !pending.isEmpty {
                // One refresh at most per request: its target is never above the version stored now.
                let target = pending.map { $0.resolved(observed: observed).target ?? observed }.min() ?? observed
                if let before, before.version > target {
                    return .fresh(before, refreshedHere: false, observed: observed)  // already answered by what is stored
                }
                let keys = try store.keys(definition.name)
                let gate = "\(keys.prefix):{\(definition.name)}:forced"
                let allowed = try await client.set(gate, to: options.replica, expiry: definition.forcedRefreshMinInterval, condition: .ifNotExists)
                if !allowed {
                    let left = try await client.send("PTTL", gate).integer ?? 0
                    return .deferred(.milliseconds(max(10, left)))
                }
                request = .newerThan(target)
                try? await store.appendEvent(.forced, service: definition.name, replica: options.replica, version: target)
            }
            let record = try await refresher.refresh(definition.name, settings: definition.settings,
                                                     provider: definition.provider, request: request)
            let refreshedHere = record.refreshedBy == options.replica && record.version != before?.version
            return .fresh(record, refreshedHere: refreshedHere, observed: observed)
        } catch let error as RefreshError {
            switch error {
            case .needsSeed: return .blocked("needs_seed", ackRequests: true)
            case .needsReauthorization: return .blocked("needs_reauth", ackRequests: true)
            case .configMismatch: return .blocked("config_mismatch", ackRequests: true)
            case .busy: return .retry("busy", after: .milliseconds(500))
            case .leaseLost: return .retry("lease_lost", after: .milliseconds(500))
            case .rotatedTokenSuperseded: return .retry("rotated_token_superseded", after: .milliseconds(100))
            case .secretReplaced: return .retry("secret_replaced", after: .milliseconds(100))
            case .provider(_, let failure):
                if case .unavailable(_, _, let retryAfter) = failure { return .retry(failure.code, after: retryAfter) }
                if case .configuration = failure { return .retry(failure.code, after: options.retryCap) }
                return .retry(failure.code, after: nil)
            }
        } catch {
            return .retry("redis: \(error)", after: nil)
        }
    }

    private func finished(_ service: String, outcome: Outcome, pending: [PendingRequest], duration: Duration) async {
        inFlight -= 1
        defer { wakeup.signal() }
        guard states[service] != nil else { return }
        states[service]?.inFlight = false
        switch outcome {
        case .fresh(let record, let refreshedHere, let observed):
            states[service]?.failures = 0
            if refreshedHere {
                statistics.refreshed += 1
                log.log(.info, "refreshed", service: service, ["version": .number(record.version), "duration_ms": .number(duration.milliseconds),
                                                                "expires_in_ms": .number(record.expiresAt - clock.now)])
            } else {
                statistics.alreadyFresh += 1
            }
            // Requests taken with this refresh (their targets now known) and those that arrived
            // while it ran: answer every one the new record satisfies; the others go again now.
            requeue(pending.map { $0.resolved(observed: observed) }, for: service)
            await settle(service, record: record)
        case .deferred(let wait):
            requeue(pending, for: service)
            queue.schedule(service, at: clock.now + wait.milliseconds)
        case .blocked(let reason, let ackRequests):
            statistics.failures += 1
            states[service]?.blocked = reason
            let message = switch reason {
            case "needs_seed": "no refresh token stored: run `baton seed \(service) --refresh-token-file PATH`"
            case "config_mismatch": "the stored refresh token was issued to another client (token_url, client_id or grant differ from this replica's configuration); left alone: align the configurations or re-seed"
            default: "the provider rejected the refresh token: re-authorise, then `baton seed`"
            }
            log.log(.warn, reason, service: service, ["message": .text(message)])
            if ackRequests {
                let waiting = pending + (states[service]?.pending ?? [])
                states[service]?.pending = []
                for request in waiting { await answer(request.request) }
            }
            queue.schedule(service, at: clock.now + options.blockedRecheck.milliseconds)
        case .retry(let errorClass, let after):
            statistics.failures += 1
            let failures = (states[service]?.failures ?? 0) + 1
            states[service]?.failures = failures
            requeue(pending, for: service)
            var delay = Backoff(base: options.retryBase, cap: options.retryCap).delay(beforeAttempt: failures - 1)
            if let after { delay = max(delay, after) }
            log.log(.warn, "refresh_failed", service: service, ["error_class": .text(errorClass), "attempt": .number(Int64(failures)),
                                                                "retry_in_ms": .number(delay.milliseconds), "duration_ms": .number(duration.milliseconds)])
            try? await store.appendEvent(.retried, service: service, replica: options.replica, detail: errorClass)
            queue.schedule(service, at: clock.now + delay.milliseconds)
        }
    }

    /// Puts requests taken by a refresh that did not complete back in front of the service's queue.
    private func requeue(_ requests: [PendingRequest], for service: String) {
        // Read first, then write: `states[s]?.pending = requests + states[s]!.pending` would read
        // the dictionary while modifying it (an exclusivity violation).
        let waiting = requests + (states[service]?.pending ?? [])
        states[service]?.pending = waiting
    }

    private func answer(_ request: RefreshRequest) async {
        do {
            try await requests.acknowledge(request)
            statistics.requestsAnswered += 1
        } catch {
            log.log(.warn, "request_ack_failed", service: request.service, ["error_class": .text(String(describing: error))])
        }
    }

    // MARK: - Events from the listener threads

    private func received(_ entry: [UInt8]) async {
        statistics.requestsReceived += 1
        let request: RefreshRequest
        do {
            request = try RefreshRequest(entry: entry)
        } catch {
            // Poison is dropped here, on first sight, never handed to another replica.
            log.log(.warn, "request_dropped", ["reason": .text(error.description)])
            do { try await requests.remove(entry) } catch {
                log.log(.warn, "request_ack_failed", ["error_class": .text(String(describing: error))])
            }
            return
        }
        guard states[request.service] != nil else {
            // A name that is not even a valid service name is not echoed (it could be anything).
            let named = (try? store.keys(request.service)) != nil
            log.log(.warn, "request_unknown_service", service: named ? request.service : nil,
                    named ? [:] : ["reason": .text("not a valid service name (\(request.service.utf8.count) bytes)")])
            await answer(request)
            return
        }
        var pending = PendingRequest(request: request, target: request.version)
        do {
            let current = try await store.record(request.service)
            pending = pending.resolved(observed: current?.version ?? 0)
            if let current, pending.isSatisfied(by: current) {
                await answer(request)  // already newer: nothing to do
                return
            }
        } catch {
            // Unknown for now: the refresh attempt reads the record and resolves the target.
        }
        states[request.service]?.pending.append(pending)
        if states[request.service]?.inFlight == false {
            queue.schedule(request.service, at: clock.now)
            wakeup.signal()
        }
    }

    private func changed(_ event: ChangeListener.Event) async {
        switch event {
        case .changed(let service, _):
            guard let state = states[service], !state.inFlight else { return }
            do {
                await settle(service, record: try await store.record(service))
            } catch {
                queue.schedule(service, at: clock.now + 1000)
            }
            wakeup.signal()
        case .resubscribed:
            await loadAndSchedule(states.keys.filter { states[$0]?.inFlight == false })
        }
    }

    private func housekeeping() async {
        do {
            try await requests.beat()
            let recovered = try await requests.recoverAbandoned(includingOwn: false)
            if recovered > 0 {
                log.log(.info, "requests_recovered", ["count": .number(Int64(recovered)), "from": .text("dead_replica")])
            }
            // Tokens left by a `baton refresh` or replica on this host that stopped before Redis had them.
            let replayed = try await refresher.replaySpool()
            if replayed.stored + replayed.superseded > 0 {
                log.log(.info, "spool_replayed", ["stored": .number(Int64(replayed.stored)), "superseded": .number(Int64(replayed.superseded))])
            }
            let unreceived = try await requests.recoverUnreceived()
            if unreceived > 0 {
                log.log(.info, "requests_recovered", ["count": .number(Int64(unreceived)), "from": .text("own_list")])
            }
            if clock.isStale { try await clock.synchronize(with: store) }
        } catch {
            log.log(.warn, "housekeeping_failed", ["error_class": .text(String(describing: error))])
        }
    }
}
