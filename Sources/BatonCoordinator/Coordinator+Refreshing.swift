import BatonRedis
import BatonSupport
import BatonTokens

/// One refresh attempt, and what its outcome means for the service and its waiting requests.
extension Coordinator {
    /// Runs the refresh protocol for one service, outside the actor.
    nonisolated func perform(_ definition: ServiceDefinition, pending: [PendingRequest]) async -> RefreshOutcome {
        var request = TokenRefresher.Request.fresh
        var takenGate: String?
        do {
            let before = try await store.record(definition.name)
            let observed = before?.version ?? 0
            if !pending.isEmpty {
                // One refresh at most per request: its target is never above the version stored now.
                let target = pending.map { $0.resolved(observed: observed).target ?? observed }.min() ?? observed
                if let before, before.version > target {
                    // Already answered by what is stored.
                    return .fresh(before, refreshedHere: false, observed: observed)
                }
                try await refresher.checkSecretOpens(definition.name)
                let gate = try store.keys(definition.name).forcedGate
                let allowed = try await client.set(
                    gate, to: options.replica, expiry: definition.forcedRefreshMinInterval, condition: .ifNotExists)
                if !allowed {
                    let left = try await client.send("PTTL", gate).integer ?? 0
                    return .deferred(.milliseconds(max(10, left)))
                }
                takenGate = gate
                request = .newerThan(target)
                try? await store.appendEvent(
                    .forced, service: definition.name, replica: options.replica, version: target)
            }
            let record = try await refresher.refresh(
                definition.name, settings: definition.settings,
                provider: definition.provider, request: request)
            let refreshedHere = record.refreshedBy == options.replica && record.version != before?.version
            return .fresh(record, refreshedHere: refreshedHere, observed: observed)
        } catch {
            if let takenGate, case RefreshError.unreadableSecret = error {
                // Refused before any provider call (the token changed to a key this replica lacks
                // since the check above): the gate goes back, so a replica with the key need not
                // wait out the interval.
                _ = try? await client.run(RedisScript.compareAndDelete, keys: [takenGate], arguments: [options.replica])
            }
            return RefreshOutcome(error, configurationRetry: options.retryCap)
        }
    }

    /// Applies an attempt's outcome: answers what it satisfied, and schedules what comes next.
    func finished(_ service: String, outcome: RefreshOutcome, pending: [PendingRequest], duration: Duration) async {
        inFlight -= 1
        defer { wakeup.signal() }
        count(outcome, service: service, duration: duration)
        guard states[service] != nil else { return }
        states[service]?.inFlight = false
        switch outcome {
        case .fresh(let record, let refreshedHere, let observed):
            states[service]?.failures = 0
            alerts?.observe(.fresh(service: service, record: record, at: clock.now))
            if refreshedHere {
                statistics.refreshed += 1
                log.log(
                    .info, "refreshed", service: service,
                    [
                        "version": .number(record.version), "duration_ms": .number(duration.milliseconds),
                        "expires_in_ms": .number(record.expiresAt - clock.now),
                    ])
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
        case .blocked(let reason, let detail):
            statistics.failures += 1
            states[service]?.blocked = reason
            alerts?.observe(.blocked(service: service, reason: reason, detail: detail, at: clock.now))
            var fields: [String: StructuredLog.Value] = ["message": .text(reason.advice(service: service))]
            if let detail { fields["error"] = .text(detail) }
            log.log(.warn, reason.rawValue, service: service, fields)
            let waiting = pending + (states[service]?.pending ?? [])
            states[service]?.pending = []
            if reason == .unknownKey, !waiting.isEmpty, await anotherReplicaMayServe(service) {
                // Only this replica lacks the key: the requests go back to the shared list, for one
                // that has it (``handBack(_:)``).
                states[service]?.handedBackAt = clock.now
                for request in waiting { await handBack(request) }
            } else {
                // Nothing will change for them until a human acts: waiting requests are answered.
                for request in waiting { await answer(request.request) }
            }
            // Requests received during the awaits above are not in `waiting`: they go round soon
            // (overwriting the time `received` gave them would leave them for the recheck).
            let hasRequests = states[service]?.pending.isEmpty == false
            queue.schedule(
                service, at: hasRequests ? requestsDue(service) : clock.now + options.blockedRecheck.milliseconds)
        case .retry(let reason, let after):
            statistics.failures += 1
            let failures = (states[service]?.failures ?? 0) + 1
            states[service]?.failures = failures
            if let buffer = states[service]?.definition.settings.refreshBuffer {
                alerts?.observe(.failed(service: service, failures: failures, refreshBuffer: buffer, at: clock.now))
            }
            requeue(pending, for: service)
            var delay = Backoff(base: options.retryBase, cap: options.retryCap).delay(beforeAttempt: failures - 1)
            if let after { delay = max(delay, after) }
            log.log(
                .warn, "refresh_failed", service: service,
                [
                    "error_class": .text(reason.errorClass), "attempt": .number(Int64(failures)),
                    "retry_in_ms": .number(delay.milliseconds), "duration_ms": .number(duration.milliseconds),
                ])
            try? await store.appendEvent(
                .retried, service: service, replica: options.replica, detail: reason.errorClass)
            queue.schedule(service, at: clock.now + delay.milliseconds)
        }
    }

    /// Puts requests taken by a refresh that did not complete back in front of the service's queue.
    func requeue(_ requests: [PendingRequest], for service: String) {
        // Read first, then write: `states[s]?.pending = requests + states[s]!.pending` would read
        // the dictionary while modifying it (an exclusivity violation).
        let waiting = requests + (states[service]?.pending ?? [])
        states[service]?.pending = waiting
    }
}
