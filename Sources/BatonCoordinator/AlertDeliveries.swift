import BatonRedis
import BatonSupport
import BatonTokens
import Foundation

/// Delivers the events of the services this replica claimed, oldest first, retrying with
/// ``BatonSupport/Backoff`` while the claim's lease is renewed; and sweeps for events whose
/// deliverer died (``AlertScripts/adopt``), so that another replica sends them after the lease.
///
/// One task per service being delivered, children of ``run()``'s task group; none of them ever
/// holds up a refresh.
final class AlertDeliveries: Sendable {
    let options: AlertOptions
    let store: TokenStore
    let replica: String
    let log: StructuredLog
    let webhook: AlertWebhook
    /// Services this replica holds the claim of and should deliver now.
    private let claimed = Mailbox<String>(collapsing: { $0 == $1 })
    /// Services with a delivery task, and whether one was asked for again while it ran.
    private let active = LockedBox([String: Bool]())

    init(options: AlertOptions, store: TokenStore, replica: String, log: StructuredLog) {
        self.options = options
        self.store = store
        self.replica = replica
        self.log = log
        webhook = AlertWebhook(options: options)
    }

    /// Delivers `service`'s events (this replica holds its claim).
    func deliver(_ service: String) {
        claimed.post(service)
    }

    /// Runs delivery tasks, and sweeps every ``AlertOptions/sweepInterval``, until cancelled.
    func run() async {
        await withDiscardingTaskGroup { group in
            var nextSweep = ContinuousClock.now
            while !Task.isCancelled {
                if ContinuousClock.now >= nextSweep {
                    await sweep()
                    nextSweep = ContinuousClock.now + options.sweepInterval
                }
                switch await claimed.next(timeout: nextSweep - ContinuousClock.now) {
                case .event(let service):
                    let start = active.withLockedValue { active -> Bool in
                        guard active[service] == nil else {
                            active[service] = true
                            return false
                        }
                        active[service] = false
                        return true
                    }
                    guard start else { continue }
                    group.addTask {
                        await self.deliverAll(service)
                        // An event claimed while this task was releasing the claim: go again.
                        if self.active.withLockedValue({ $0.removeValue(forKey: service) ?? false }) {
                            self.deliver(service)
                        }
                    }
                case .timedOut: continue
                case .cancelled, .closed: return
                }
            }
        }
    }

    /// Delivers `service`'s undelivered events in order while this replica holds the claim.
    private func deliverAll(_ service: String) async {
        guard let keys = try? AlertKeys(store.keys(service)) else { return }
        var backoff = Backoff(base: options.retryBase, cap: options.retryCap)
        var attempt = 0
        delivering: while !Task.isCancelled {
            let next: RESPValue
            do {
                next = try await store.client.run(
                    AlertScripts.next, keys: [keys.alert, keys.claim],
                    arguments: [replica, options.lease.milliseconds])
            } catch {
                log.log(.warn, "alert_delivery_redis_failed", service: service, ["error_class": .text("\(error)")])
                if await pause(backoff.next()) { continue } else { break delivering }
            }
            let values = next.array ?? []
            guard values.count == 2, let seq = values[0].integer, let body = values[1].bytes else {
                if values.first?.integer == -1 {
                    log.log(.warn, "alert_claim_lost", service: service, ["message": .text(Self.claimLostAdvice)])
                }
                return
            }
            let (id, event) = Self.identity(of: body)
            attempt += 1
            switch await webhook.send(body: body, id: id, event: event) {
            case .delivered(let status):
                log.log(
                    .info, "alert_delivered", service: service,
                    [
                        "event": .text(event), "id": .text(id), "attempts": .number(Int64(attempt)),
                        "status": .number(Int64(status)),
                    ])
                attempt = 0
                backoff.reset()
                do {
                    try await store.client.run(AlertScripts.delivered, keys: [keys.alert], arguments: [seq])
                } catch {
                    // Sent, but not marked: the next round (or the adopter) sends it again; the
                    // receiver drops the duplicate by its id.
                    log.log(.warn, "alert_delivery_redis_failed", service: service, ["error_class": .text("\(error)")])
                }
            case .failed(let status, let reason):
                let wait = backoff.next()
                var fields: [String: StructuredLog.Value] = [
                    "event": .text(event), "id": .text(id), "attempt": .number(Int64(attempt)),
                    "reason": .text(reason), "retry_in_ms": .number(wait.milliseconds),
                ]
                if let status { fields["status"] = .number(Int64(status)) }
                log.log(.warn, "alert_delivery_failed", service: service, fields)
                if await !pause(wait) { break delivering }
            }
        }
        // Stopping: hand the claim back so another replica need not wait for the lease.
        _ = try? await store.client.run(RedisScript.compareAndDelete, keys: [keys.claim], arguments: [replica])
    }

    /// Sleeps; `false` when the task was cancelled meanwhile.
    private func pause(_ duration: Duration) async -> Bool {
        (try? await Task.sleep(for: duration)) != nil
    }

    /// Claims the services whose events nobody is delivering (their deliverer died and its lease
    /// ran out), and forgets the ones with nothing left.
    private func sweep() async {
        let pending = AlertKeys.pending(prefix: store.prefix)
        do {
            let services = try await store.client.send("SMEMBERS", pending).array?.compactMap(\.string) ?? []
            for service in services {
                guard let keys = try? AlertKeys(store.keys(service)) else {
                    try await store.client.send("SREM", pending, service)
                    continue
                }
                let outcome = try await store.client.run(
                    AlertScripts.adopt, keys: [keys.alert, keys.claim],
                    arguments: [replica, options.lease.milliseconds]
                ).integer
                if outcome == 1 {
                    log.log(.info, "alert_adopted", service: service)
                    deliver(service)
                } else if outcome == -1 {
                    try await store.client.send("SREM", pending, service)
                }
            }
        } catch {
            log.log(.warn, "alert_sweep_failed", ["error_class": .text("\(error)")])
        }
    }

    /// The `id` and `event` of a stored body (written by ``AlertEvent/template``).
    static func identity(of body: [UInt8]) -> (id: String, event: String) {
        let object = (try? JSONSerialization.jsonObject(with: Data(body))) as? [String: Any]
        return (object?["id"] as? String ?? "unknown", object?["event"] as? String ?? "unknown")
    }

    static let claimLostAdvice =
        "this replica's claim on the service's alerts ran out (Redis slow or unreachable); another replica delivers them"
}
