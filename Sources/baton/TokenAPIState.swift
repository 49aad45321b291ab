import BatonCoordinator
import BatonMetrics
import BatonRedis
import BatonSupport
import BatonTokens

/// What the token API knows of one service at one moment: its record, its status as
/// ``BatonMetrics/ServiceStatus/classify(record:corruptRecord:hasSecret:lacksKey:clientMismatch:awaitingReplicas:now:)``
/// decides it (the same decision as `baton status` and `baton_service_status`), and whether it
/// exists at all.
struct TokenAPIState: Sendable {
    /// The record, when it reads.
    let record: TokenRecord?
    /// The status.
    let status: ServiceStatus
    /// Whether the service is configured here or known to Redis (a record, a refresh token, or
    /// membership of `prefix:services`).
    let exists: Bool
    /// Redis's clock (ms since the epoch).
    let now: Int64

    /// Statuses that waiting does not cure: a person must act (re-authorise, seed, fix the
    /// configuration or the keyring, or remove the corrupt record).
    static let needsAttention: Set<ServiceStatus> = [
        .needsReauth, .needsSeed, .configMismatch, .unknownKey, .corruptRecord,
    ]

    /// Reads the state of `service` in two round trips. Only the refresh token's envelope
    /// header is decoded (its key id and client), never the token.
    /// - Parameters:
    ///   - configured: the services configured on this replica and their client fingerprints.
    ///   - keyring: this replica's keyring, to tell a key it lacks.
    /// - Throws: a Redis error, or a bad service name.
    static func read(
        _ service: String, store: TokenStore, configured: [String: String?], keyring: Keyring?
    ) async throws -> TokenAPIState {
        let keys = try store.keys(service)
        let replies = try await store.client.pipeline([
            RedisCommand("GET", keys.token), RedisCommand("GET", keys.secret), RedisCommand("TIME"),
            RedisCommand("SISMEMBER", keys.services, service), RedisCommand("HGETALL", keys.unknownKey),
        ])
        for reply in replies {
            if case .error(let message) = reply {
                throw RedisError.server(RedisServerError(message: message, command: "token API read"))
            }
        }
        let now = try RedisClient.milliseconds(fromTimeReply: replies[2])
        let record = replies[0].bytes.flatMap { try? TokenRecord.decode($0) }
        let corrupt = replies[0].bytes != nil && record == nil
        let stored = replies[1].bytes.flatMap { try? SecretEnvelope.decode($0, service: service) }
        let kid = stored?.kid
        // Reports are replica → kid; one about an older envelope no longer applies.
        let fields = (replies[4].array ?? []).compactMap(\.string)
        let reportedKids = stride(from: 1, to: fields.count, by: 2).map { fields[$0] }
        let reportedLacking = kid.map { reportedKids.contains($0) } ?? false
        let lacksKey = kid.map { kid in reportedLacking || (keyring.map { $0.key(kid: kid) == nil } ?? false) }
        let mine = configured[service] ?? nil
        let awaiting = try await store.awaitingReplicas([service])[service] != nil
        let status = ServiceStatus.classify(
            record: record, corruptRecord: corrupt, hasSecret: !replies[1].isNull, lacksKey: lacksKey ?? false,
            clientMismatch: mine != nil && stored?.client != nil && stored?.client != mine,
            awaitingReplicas: awaiting, now: now)
        let exists =
            configured[service] != nil || replies[3].integer == 1 || replies[0].bytes != nil || !replies[1].isNull
        return TokenAPIState(record: record, status: status, exists: exists, now: now)
    }
}
