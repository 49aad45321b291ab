import BatonTokens

/// What the listener threads deliver (forced-refresh requests, change notifications) and the
/// periodic housekeeping.
extension Coordinator {
    /// Acknowledges a request (removes it from this replica's processing list).
    func answer(_ request: RefreshRequest) async {
        do {
            try await requests.acknowledge(request)
            statistics.requestsAnswered += 1
            metrics.countForcedRequest(.answered)
        } catch {
            metrics.countForcedRequest(.ackFailed)
            log.log(
                .warn, "request_ack_failed", service: request.service, ["error_class": .text(String(describing: error))]
            )
        }
    }

    /// Gives a request this replica cannot serve (it lacks the key of the service's secret) back
    /// to the shared list, for another replica: rewritten with its version pinned to its target
    /// (a request without one must not ask the next replica for a second refresh) and its
    /// hand-backs counted. One handed back ``maximumHandBacks`` times is answered instead: a
    /// replica that looks alive but never takes requests must not keep it circling. Never lost: a
    /// failed hand-back leaves the entry in this replica's processing list, and
    /// ``RefreshRequestQueue/recoverUnreceived()`` puts it back.
    func handBack(_ pending: PendingRequest) async {
        let request = pending.request
        guard request.handedBack < Self.maximumHandBacks else {
            log.log(
                .warn, "request_not_served", service: request.service,
                ["reason": .text("unknown_key"), "handed_back": .number(Int64(request.handedBack))])
            await answer(request)
            return
        }
        let replacement = RefreshRequestEntry.encode(
            service: request.service, version: pending.target ?? request.version, handedBack: request.handedBack + 1)
        do {
            guard try await requests.handBack(request, as: replacement) else { return }
            metrics.countForcedRequest(.handedBack)
            log.log(
                .info, "request_handed_back", service: request.service,
                ["reason": .text("unknown_key"), "handed_back": .number(Int64(request.handedBack + 1))])
        } catch {
            metrics.countForcedRequest(.ackFailed)
            log.log(
                .warn, "request_ack_failed", service: request.service, ["error_class": .text(String(describing: error))]
            )
        }
    }

    /// Whether a live replica other than this one may hold the key this replica lacks for
    /// `service`: one whose heartbeat lives and that has not reported that same kid unknown (a
    /// report of another kid, from before a rekey, says nothing about this one). When in doubt
    /// (Redis did not answer) it says yes: a request handed back is never lost, while one
    /// answered is.
    func anotherReplicaMayServe(_ service: String) async -> Bool {
        do {
            let live = try await requests.liveReplicas().subtracting([options.replica])
            let reports = try await store.unknownKeyReports([service])[service] ?? [:]
            let kid = reports[options.replica]
            let lacking = Set(reports.filter { kid == nil || $0.value == kid }.keys)
            return !live.subtracting(lacking).isEmpty
        } catch {
            return true
        }
    }

    /// A list entry taken by the request consumer.
    func received(_ entry: [UInt8]) async {
        statistics.requestsReceived += 1
        metrics.countForcedRequest(.taken)
        let request: RefreshRequest
        do {
            request = try RefreshRequest(entry: entry)
        } catch {
            // Poison is dropped here, on first sight, never handed to another replica.
            log.log(.warn, "request_dropped", ["reason": .text(error.description)])
            metrics.countForcedRequest(.dropped)
            do { try await requests.remove(entry) } catch {
                log.log(.warn, "request_ack_failed", ["error_class": .text(String(describing: error))])
            }
            return
        }
        guard states[request.service] != nil else {
            // A name that is not even a valid service name is not echoed (it could be anything).
            let named = (try? store.keys(request.service)) != nil
            log.log(
                .warn, "request_unknown_service", service: named ? request.service : nil,
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
            queue.schedule(request.service, at: requestsDue(request.service))
            wakeup.signal()
        }
    }

    /// A change notification, or a (re)subscription after which notifications may have been missed.
    func changed(_ event: ChangeListener.Event) async {
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

    /// Every ``CoordinatorOptions/housekeepingInterval``: heartbeat, recovery of requests stuck in
    /// processing lists, spool replay, clock re-measurement.
    func housekeeping() async {
        do {
            try await requests.beat()
            let recovered = try await requests.recoverAbandoned(includingOwn: false)
            if recovered > 0 {
                log.log(
                    .info, "requests_recovered", ["count": .number(Int64(recovered)), "from": .text("dead_replica")])
            }
            // Tokens left by a `baton refresh` or replica on this host that stopped before Redis had them.
            try await replaySpool()
            let unreceived = try await requests.recoverUnreceived()
            if unreceived > 0 {
                log.log(.info, "requests_recovered", ["count": .number(Int64(unreceived)), "from": .text("own_list")])
            }
            if clock.isStale { clock = try await ServerClock.measure(with: store) }
        } catch {
            log.log(.warn, "housekeeping_failed", ["error_class": .text(String(describing: error))])
        }
    }
}
