import BatonTokens

/// When each service is due, and handing due services to refresh tasks.
extension Coordinator {
    /// Reads the records of `services` and schedules each at its refresh time (plus jitter).
    func loadAndSchedule(_ services: [String]) async {
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
    func settle(_ service: String, record: TokenRecord?) async {
        if let record, let pending = states[service]?.pending, !pending.isEmpty {
            states[service]?.pending = pending.filter { !$0.isSatisfied(by: record) }
            for done in pending where done.isSatisfied(by: record) { await answer(done.request) }
        }
        guard let state = states[service], !state.inFlight else { return }
        schedule(service, record: record)
    }

    /// Schedules the service: **now** while requests wait for it (they must never wait for the
    /// token's ordinary refresh time, minutes away; see ``requestsDue(_:)``), else at its refresh
    /// time plus jitter.
    func schedule(_ service: String, record: TokenRecord?) {
        guard let state = states[service] else { return }
        let jitter = Int64.random(in: 0...max(0, options.scheduleJitter.milliseconds))
        let now = clock.now
        guard let record else {
            states[service]?.blocked = nil
            queue.schedule(service, at: state.pending.isEmpty ? now + jitter : requestsDue(service))
            return
        }
        if record.status == .needsReauth {
            states[service]?.blocked = .needsReauth
            queue.schedule(
                service, at: state.pending.isEmpty ? now + options.blockedRecheck.milliseconds : requestsDue(service))
            return
        }
        states[service]?.blocked = nil
        guard state.pending.isEmpty else {
            queue.schedule(service, at: requestsDue(service))
            return
        }
        let due =
            record.status == .ok ? record.refreshDueAt(refreshBuffer: state.definition.settings.refreshBuffer) : now
        queue.schedule(service, at: max(due, now) + jitter)
    }

    /// When a service with requests waiting goes next: now, except that requests this replica
    /// handed back a moment ago (it lacks the key) and took again (no other replica was waiting
    /// on the list) go round at most once per ``handBackPause``.
    func requestsDue(_ service: String) -> Int64 {
        let resume = (states[service]?.handedBackAt).map { $0 + Self.handBackPause.milliseconds } ?? 0
        return max(clock.now, resume)
    }

    /// Starts a refresh (a child task of `group`) for every due service, up to the capacity left.
    func dispatchDue(into group: inout DiscardingTaskGroup) {
        let capacity = options.maxConcurrentRefreshes - inFlight
        guard capacity > 0 else { return }
        for service in queue.popDue(at: clock.now, limit: capacity) {
            guard var state = states[service], !state.inFlight else { continue }
            if state.blocked != nil && state.pending.isEmpty {
                // A blocked service is only re-read (a lost notification), never refreshed.
                group.addTask { [self] in await recheck(service) }
                continue
            }
            state.inFlight = true
            let pending = state.pending
            state.pending = []
            states[service] = state
            inFlight += 1
            statistics.attempts += 1
            let definition = state.definition
            group.addTask { [self] in
                let started = ContinuousClock.now
                let outcome = await perform(definition, pending: pending)
                await finished(service, outcome: outcome, pending: pending, duration: ContinuousClock.now - started)
            }
        }
    }

    /// Re-reads a blocked service (a lost notification) and schedules it accordingly.
    func recheck(_ service: String) async {
        do {
            let record = try await store.record(service)
            // Present is enough here: a secret this replica cannot open is the refresh's to report.
            let secret = try await store.client.get(store.keys(service).secret)
            if record == nil && secret == nil && states[service]?.definition.settings.usesRefreshToken == true
                && states[service]?.pending.isEmpty == true
            {
                queue.schedule(service, at: clock.now + options.blockedRecheck.milliseconds)
            } else {
                await settle(service, record: record)
            }
        } catch {
            queue.schedule(service, at: clock.now + 5000)
        }
        wakeup.signal()
    }
}
