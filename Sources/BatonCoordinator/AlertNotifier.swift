import BatonRedis
import BatonSupport
import BatonTokens

/// What the coordinator reports to the ``AlertNotifier`` after each refresh attempt.
enum AlertObservation: Sendable {
    /// An attempt ended with this record (refreshed here or by another replica).
    case fresh(service: String, record: TokenRecord, at: Int64)
    /// The service is left alone until a human acts.
    case blocked(service: String, reason: BlockedReason, detail: String?, at: Int64)
    /// The `failures`-th consecutive failed attempt on this replica.
    case failed(service: String, failures: Int, refreshBuffer: Duration, at: Int64)
}

/// Turns the coordinator's observations into alert events, each recorded once across all replicas
/// (``AlertScripts/transition``), and hands the ones this replica claimed to ``AlertDeliveries``.
///
/// The coordinator only calls ``observe(_:)``, which never blocks: observations are handled in
/// order on this notifier's own task, and deliveries on theirs, so a slow webhook never delays a
/// refresh. Design: docs/ARCHITECTURE.md "Alert webhooks".
final class AlertNotifier: Sendable {
    let options: AlertOptions
    let store: TokenStore
    let replica: String
    let log: StructuredLog
    let deliveries: AlertDeliveries
    private let inbox = Mailbox<AlertObservation>(collapsing: { _, _ in false })

    init(options: AlertOptions, store: TokenStore, replica: String, log: StructuredLog) {
        self.options = options
        self.store = store
        self.replica = replica
        self.log = log
        deliveries = AlertDeliveries(options: options, store: store, replica: replica, log: log)
    }

    /// Queues an observation; returns at once.
    func observe(_ observation: AlertObservation) {
        inbox.post(observation)
    }

    /// Handles observations and deliveries until the calling task is cancelled.
    func run() async {
        await withDiscardingTaskGroup { group in
            group.addTask { await self.deliveries.run() }
            while true {
                switch await inbox.next(timeout: nil) {
                case .event(let observation): await handle(observation)
                case .timedOut: continue
                case .cancelled, .closed: return
                }
            }
        }
    }

    /// The event an observation means, if any, then its transition.
    private func handle(_ observation: AlertObservation) async {
        switch observation {
        case .fresh(let service, let record, let at):
            guard record.status == .ok else { return }
            await transition(
                AlertEvent(
                    condition: .ok, service: service, version: record.version, at: at, replica: replica, detail: nil))
        case .blocked(let service, let reason, let detail, let at):
            let record = try? await store.record(service)
            await transition(
                AlertEvent(
                    condition: AlertCondition(reason), service: service, version: record?.version, at: at,
                    replica: replica, detail: detail ?? record?.lastError.map { "\($0.code): \($0.description)" }))
        case .failed(let service, let failures, let refreshBuffer, let at):
            guard let (record, now) = try? await store.recordAndNow(service), let record,
                record.status == .refreshingFailed
            else { return }
            // N failures in a row here, or the token already inside its refresh buffer.
            guard failures >= options.refreshFailingAfter || record.expiresAt - now <= refreshBuffer.milliseconds
            else { return }
            await transition(
                AlertEvent(
                    condition: .refreshFailing, service: service, version: record.version, at: at, replica: replica,
                    detail: record.lastError.map { "\($0.code): \($0.description)" }))
        }
    }

    /// Records the event unless the service is already in that condition (or the token record no
    /// longer agrees); delivers it when this replica took the claim.
    private func transition(_ event: AlertEvent) async {
        let service = event.service
        guard let keys = try? AlertKeys(store.keys(service)) else { return }
        let pending = AlertKeys.pending(prefix: store.prefix)
        do {
            // Listed before it exists, so a replica that dies right after recording it still leaves
            // it to the others' sweep (a `recovered` check on every refresh skips this write).
            if event.condition != .ok { try await store.client.send("SADD", pending, service) }
            let reply = try await store.client.run(
                AlertScripts.transition, keys: [keys.alert, keys.claim, keys.token],
                arguments: [
                    event.condition.rawValue, event.template, replica, options.lease.milliseconds,
                    event.condition.requiredRecordStatus?.rawValue ?? "",
                ])
            let values = reply.array ?? []
            guard values.count == 2, let seq = values[0].integer, seq > 0 else { return }
            try await store.client.send("SADD", pending, service)
            let claimed = values[1].integer == 1
            log.log(
                .info, "alert_raised", service: service,
                ["event": .text(event.condition.event), "seq": .number(seq), "claimed": .text(claimed ? "yes" : "no")])
            if claimed { deliveries.deliver(service) }
        } catch {
            log.log(
                .warn, "alert_record_failed", service: service,
                ["event": .text(event.condition.event), "error_class": .text(String(describing: error))])
        }
    }
}
