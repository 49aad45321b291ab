import BatonMetrics
import BatonRedis
import BatonTokens

/// What the coordinator exports to Prometheus: its attempts' results (counted in ``finished``)
/// and, for a scrape, the state of every service in Redis.
extension Coordinator {
    /// Every service's status, expiry and version as Redis holds them (the services registered in
    /// Redis and those configured here), and the length of the shared request list: what any one
    /// replica's `/metrics` shows for the whole fleet.
    ///
    /// Reads outside the actor, in pipelined batches: for N services about 4·⌈N/500⌉ + 4 round
    /// trips (records, refresh tokens, acknowledgement state, unknown-key reports; the service
    /// set, `TIME`, `LLEN`). Token values are read only to learn the key and client they carry.
    /// - Throws: a Redis error.
    public nonisolated func fleetState() async throws -> FleetState {
        let configured = await configuredClients()
        // A name in the service set that is not a valid service name (written by hand) is left
        // out rather than failing the whole read.
        let services = Set(try await store.services()).union(configured.keys).sorted()
            .filter { (try? store.keys($0)) != nil }
        let now = try await store.now()
        let (records, unreadable) = try await store.readRecords(services)
        var secrets: [RESPValue] = []
        for start in stride(from: 0, to: services.count, by: 500) {
            let batch = services[start..<min(services.count, start + 500)]
            secrets += try await client.pipeline(try batch.map { RedisCommand("GET", try store.keys($0).secret) })
        }
        let awaiting = try await store.awaitingReplicas(services)
        let reports = try await store.unknownKeyReports(services)
        let pending = try await client.send("LLEN", requests.requests).integer ?? 0
        let keyring = options.encryption.keyring
        var entries: [FleetState.Service] = []
        entries.reserveCapacity(services.count)
        for (service, secret) in zip(services, secrets) {
            let record = records[service]
            let stored = secret.bytes.flatMap { try? SecretEnvelope.decode($0, service: service) }
            let kid = stored?.kid
            let reportedLacking = (reports[service] ?? [:]).values.contains { $0 == kid }
            let lacksKey = kid.map { kid in reportedLacking || (keyring.map { $0.key(kid: kid) == nil } ?? false) }
            let mine = configured[service] ?? nil
            let status = ServiceStatus.classify(
                record: record, corruptRecord: unreadable[service] != nil, hasSecret: !secret.isNull,
                lacksKey: lacksKey ?? false,
                clientMismatch: mine != nil && stored?.client != nil && stored?.client != mine,
                awaitingReplicas: awaiting[service] != nil, now: now)
            entries.append(
                FleetState.Service(
                    name: service, status: status, expiresAt: record?.expiresAt, version: record?.version))
        }
        return FleetState(services: entries, pendingRequests: Int(pending))
    }

    /// The configured services (as of the last reload) and their client fingerprints: public for
    /// the token API of `baton serve`, which answers 404 for a service neither configured nor in Redis.
    public func configuredClients() -> [String: String?] {
        states.mapValues { $0.definition.settings.clientFingerprint }
    }

    /// Counts a finished attempt in `baton_refresh_total`, `baton_refresh_duration_seconds` and
    /// `baton_provider_errors_total` (a deferred one, which waited for the forced-refresh gate
    /// without trying, is not an attempt).
    func count(_ outcome: RefreshOutcome, service: String, duration: Duration) {
        let result: RefreshResult
        switch outcome {
        case .fresh(_, let refreshedHere, _): result = refreshedHere ? .refreshed : .alreadyFresh
        case .deferred: return
        case .blocked(let reason, _): result = reason == .needsReauth ? .invalidGrant : .failed
        case .retry(let reason, _): result = reason == .busy ? .busy : .failed
        }
        metrics.countRefresh(service: service, result: result, duration: duration)
        switch outcome {
        case .blocked(.needsReauth, _):
            metrics.providerErrors.increment(service, "invalid_grant")
        case .retry(.provider(let code), _):
            metrics.providerErrors.increment(service, ProviderErrorClass.of(code: code))
        default:
            break
        }
    }
}

/// The `class` label of `baton_provider_errors_total`: the provider's error code when it is one of
/// a fixed set, else `other`, so that a provider cannot create series at will.
enum ProviderErrorClass {
    /// RFC 6749 §5.2's codes and the classes Baton gives transport and HTTP failures.
    static let known: Set<String> = [
        "invalid_request", "invalid_client", "invalid_grant", "unauthorized_client", "unsupported_grant_type",
        "invalid_scope", "rate_limited", "temporarily_unavailable", "transport_error", "protocol_error",
    ]

    /// The class of a provider failure's code (`server_error_503` is `server_error`).
    static func of(code: String) -> String {
        if known.contains(code) { return code }
        if code.hasPrefix("server_error") { return "server_error" }
        return "other"
    }
}
