import BatonRedis
import BatonSupport
import Foundation

/// Reads and writes token records, refresh tokens and audit events in Redis (see ``TokenKeys``).
///
/// All writes are fence-checked Lua scripts (`TokenScripts`). The store knows nothing of OAuth:
/// the refresh protocol (``TokenRefresher``) decides what to write.
public struct TokenStore: Sendable {
    /// The Redis client.
    public let client: RedisClient
    /// The key prefix (default `oauth`).
    public let prefix: String

    /// Where this store's data lives: the Redis address, database and key prefix
    /// (`127.0.0.1:6379/0/oauth`). Identifies spooled tokens that belong here.
    public var location: String { "\(client.endpoint.address)/\(client.endpoint.database)/\(prefix)" }

    /// Creates a store over `client` with keys under `prefix`.
    public init(client: RedisClient, prefix: String = BatonDefaults.tokenPrefix) {
        self.client = client
        self.prefix = prefix
    }

    /// The keys of `service`.
    /// - Throws: ``BatonLock/LockError/invalidName(_:reason:)`` for a bad service name.
    public func keys(_ service: String) throws -> TokenKeys {
        try TokenKeys(prefix: prefix, service: service)
    }

    // MARK: - Reading

    /// The record of `service`, or `nil` when there is none.
    public func record(_ service: String) async throws -> TokenRecord? {
        try decodedRecord(try await client.get(keys(service).token), of: service)
    }

    /// The record of `service` and the server's clock, in one round trip (`GET` and `TIME`
    /// pipelined): what a reader needs to decide whether the token is still valid.
    public func recordAndNow(_ service: String) async throws -> (TokenRecord?, Int64) {
        let replies = try await client.pipeline([RedisCommand("GET", try keys(service).token), RedisCommand("TIME")])
        let now = try RedisClient.milliseconds(fromTimeReply: replies[1])
        if case .error(let message) = replies[0] {
            throw RedisError.server(RedisServerError(message: message, command: "GET"))
        }
        return (try decodedRecord(replies[0].bytes, of: service), now)
    }

    private func decodedRecord(_ bytes: [UInt8]?, of service: String) throws -> TokenRecord? {
        guard let bytes else { return nil }
        do {
            return try TokenRecord.decode(bytes)
        } catch {
            throw TokenStoreError.corruptRecord(service: service, reason: "\(error)")
        }
    }

    /// The records of many services, read with pipelined `GET`s (not `MGET`, whose keys would
    /// have to share a Cluster slot). Missing and unreadable records are absent from the result.
    public func records(_ services: [String], batchSize: Int = 500) async throws -> [String: TokenRecord] {
        var records: [String: TokenRecord] = [:]
        for start in stride(from: 0, to: services.count, by: batchSize) {
            let batch = Array(services[start..<min(services.count, start + batchSize)])
            let replies = try await client.pipeline(try batch.map { RedisCommand("GET", try keys($0).token) })
            for (service, reply) in zip(batch, replies) {
                if let bytes = reply.bytes, let record = try? TokenRecord.decode(bytes) { records[service] = record }
            }
        }
        return records
    }

    /// The stored refresh token of `service`, or `nil` when none was seeded.
    public func secret(_ service: String) async throws -> SecretEnvelope? {
        guard let bytes = try await client.get(keys(service).secret) else { return nil }
        return try SecretEnvelope.decode(bytes, service: service)
    }

    /// The Redis server's clock (ms since the epoch): the only clock freshness is judged by.
    public func now() async throws -> Int64 {
        try await client.serverTimeMilliseconds()
    }

    /// The known services (`prefix:services`), sorted.
    public func services() async throws -> [String] {
        let reply = try await client.send("SMEMBERS", TokenKeys.services(prefix: prefix))
        return (reply.array ?? []).compactMap(\.string).sorted()
    }

    /// The newest audit events of `service`, newest first.
    public func events(_ service: String, count: Int = 20) async throws -> [TokenEvent] {
        let reply = try await client.send("XREVRANGE", keys(service).events, "+", "-", "COUNT", count)
        return (reply.array ?? []).compactMap(TokenEvent.init(streamEntry:))
    }

    // MARK: - Writing

    /// What happened to the refresh token offered to a persist.
    public enum SecretOutcome: Sendable, Equatable {
        /// None was offered.
        case notOffered
        /// It replaced the stored one.
        case written
        /// A newer one is stored (an operator's seed, or another holder's rotation): ours was
        /// not written, and neither was anything else. For a failure record (no secret offered):
        /// the secret the failed call used was replaced, and the record was not written.
        case rejected
    }

    /// What ``persist(_:service:secret:client:fence:usedSecret:event:replica:owner:errorCode:)`` did.
    public enum PersistOutcome: Sendable, Equatable {
        /// The record (or, for a secret-only write, the secret) was written with this version.
        /// `lockHeld` tells whether the writer still held the lock (a `false` means its lease
        /// ran out, but the fence kept the write safe).
        case written(version: Int64, lockHeld: Bool, secret: SecretOutcome)
        /// Newer state exists: a newer successful record (the secret may still have been
        /// written, see `secret`), or a newer secret (`secret` is then ``SecretOutcome/rejected``).
        case rejectedAsStale(newerVersion: Int64, secret: SecretOutcome)

        /// What happened to the offered refresh token.
        public var secret: SecretOutcome {
            switch self {
            case .written(_, _, let secret), .rejectedAsStale(_, let secret): return secret
            }
        }
    }

    /// Writes a record (and a rotated refresh token) under `fence` in one atomic script, appends
    /// the audit event and publishes the change. See `TokenScripts.persist` for the rules.
    /// - Parameters:
    ///   - record: the record, or `nil` to write only `secret` (replaying a spooled token).
    ///   - secret: a rotated refresh token, or `nil`.
    ///   - client: the fingerprint of the client it was issued to (stored in its envelope).
    ///   - usedSecret: the identity (``SecretEnvelope/identity``) of the stored secret the provider
    ///     call used: a rotation of that secret replaces it whatever the writer's fence, and a
    ///     failure record is refused once that secret was replaced.
    public func persist(
        _ record: TokenRecord?, service: String, secret: String?, client: String? = nil, fence: Int64,
        usedSecret: String?,
        event: TokenEvent.Kind, replica: String, owner: String, errorCode: String? = nil
    ) async throws -> PersistOutcome {
        try await persist(
            record, service: service, secret: secret, client: client, fence: fence, usedSecret: usedSecret,
            event: event, replica: replica, owner: owner, errorCode: errorCode, waitingFor: .none
        ).outcome
    }

    /// ``persist(_:service:secret:client:fence:usedSecret:event:replica:owner:errorCode:)``, then,
    /// when it stored `secret` and `acknowledgement` asks for replicas, `WAIT` on the same
    /// connection: the count covers this write and every earlier one (replication is ordered).
    /// - Returns: the outcome, and how many replicas acknowledged it (`nil`: no `WAIT` was sent,
    ///   because none was asked for or no secret was stored).
    /// - Throws: a ``BatonRedis/RedisError`` from the script or the `WAIT` (the write may have
    ///   happened: it is idempotent, retry it).
    public func persist(
        _ record: TokenRecord?, service: String, secret: String?, client: String? = nil, fence: Int64,
        usedSecret: String?, event: TokenEvent.Kind, replica: String, owner: String, errorCode: String? = nil,
        waitingFor acknowledgement: ReplicaAcknowledgement
    ) async throws -> (outcome: PersistOutcome, acknowledged: Int?) {
        let keys = try keys(service)
        let recordJSON: [UInt8]
        if var placeholder = record {
            placeholder.version = Self.versionPlaceholderValue
            recordJSON = try Self.withVersionPlaceholder(placeholder.jsonBytes(), field: "version")
        } else {
            recordJSON = []
        }
        let secretJSON =
            try secret.map {
                try Self.withVersionPlaceholder(
                    SecretEnvelope(refreshToken: $0, fence: Self.versionPlaceholderValue, client: client).jsonBytes(),
                    field: "fence")
            } ?? []
        let scriptKeys = [keys.token, keys.secret, keys.events, keys.lock.fence, keys.lock.lock]
        let arguments: [any RedisArgumentConvertible] = [
            fence, recordJSON, secretJSON, event.rawValue, replica, keys.changedChannel, owner,
            errorCode ?? "", service, usedSecret ?? "",
        ]
        // Without replica acknowledgements the script goes on the shared pipelined connection;
        // with them, the script and its WAIT need one pooled connection of their own.
        let (reply, acknowledged) =
            !acknowledgement.isRequired
            ? (try await self.client.run(TokenScripts.persist, keys: scriptKeys, arguments: arguments), Int?.none)
            : try await self.client.withConnection(routingKey: keys.token) { connection in
                let reply = try connection.run(TokenScripts.persist, keys: scriptKeys, arguments: arguments)
                let generation = connection.generation
                // Only a stored secret needs replicas; WAIT counts this connection's writes, so a
                // connection replaced since the script counts as not acknowledged (the retry writes again).
                guard reply.array?.count == 5, reply.array?[3].integer == 1 else {
                    return (reply, Int?.none)
                }
                let acknowledged = try connection.waitForReplicas(
                    acknowledgement.replicas, timeout: acknowledgement.timeout, writtenIn: generation)
                return (reply, acknowledged)
            }
        guard let parts = reply.array, parts.count == 5, let flag = parts[0].integer, let version = parts[1].integer,
            let held = parts[2].integer, let secretFlag = parts[3].integer, let created = parts[4].integer
        else {
            throw RedisError.unexpectedReply(command: "token persist script", reply: reply.description)
        }
        let secretOutcome: SecretOutcome = secretFlag == 1 ? .written : secretFlag == 0 ? .notOffered : .rejected
        // A service's first record registers it (a seed registers it too); later writes need not.
        if flag == 1 && created == 1 { try? await register(service) }
        let outcome: PersistOutcome =
            flag == 1
            ? .written(version: version, lockHeld: held == 1, secret: secretOutcome)
            : .rejectedAsStale(newerVersion: version, secret: secretOutcome)
        return (outcome, acknowledged)
    }

    /// Stores an operator-supplied refresh token with a fresh fence (it always wins), registers
    /// the service, and clears a `needs_reauth` state.
    /// - Parameter client: the fingerprint of the client the token was issued to (from the
    ///   configuration); replicas configured for another client refuse to use the token.
    /// - Returns: the fence of the write.
    @discardableResult
    public func seed(service: String, refreshToken: String, replica: String, client: String? = nil) async throws
        -> Int64
    {
        let keys = try keys(service)
        let envelope = try Self.withVersionPlaceholder(
            SecretEnvelope(refreshToken: refreshToken, fence: Self.versionPlaceholderValue, client: client).jsonBytes(),
            field: "fence")
        let reply = try await self.client.run(
            TokenScripts.seed,
            keys: [keys.secret, keys.lock.fence, keys.token, keys.events],
            arguments: [envelope, service, replica, keys.changedChannel]
        )
        guard let fence = reply.integer else {
            throw RedisError.unexpectedReply(command: "token seed script", reply: reply.description)
        }
        try await register(service)
        return fence
    }

    /// Adds `service` to the registry `prefix:services` (idempotent). Kept out of the scripts:
    /// the registry lives in another Cluster slot than the service's keys.
    public func register(_ service: String) async throws {
        try await client.send("SADD", TokenKeys.services(prefix: prefix), service)
    }

    /// Appends an event that changes no state (`needs_seed`, `forced`, `retried`).
    public func appendEvent(
        _ kind: TokenEvent.Kind, service: String, replica: String, version: Int64? = nil, detail: String? = nil
    ) async throws {
        var fields: [any RedisArgumentConvertible] = ["event", kind.rawValue, "service", service, "replica", replica]
        if let version { fields += ["version", version] }
        if let detail { fields += ["error", detail] }
        try await client.send(
            RedisCommand("XADD", arguments: [keys(service).events, "MAXLEN", "~", 1000, "*"] + fields))
    }

    // MARK: - Placeholder plumbing

    /// A number that cannot be a real fence; swapped for the quoted placeholder in the JSON so
    /// the script can put in the version it decides on.
    private static let versionPlaceholderValue: Int64 = -987_654_321_012_345

    /// Swaps `"field":<placeholder number>` for `"field":"@@VERSION@@"`. Matching the key too
    /// (the encoders write compact JSON) means a token that happens to contain the digits is
    /// never touched: inside a JSON string the quotes around a key would be escaped.
    private static func withVersionPlaceholder(_ json: [UInt8], field: String) -> [UInt8] {
        let text = String(decoding: json, as: UTF8.self)
        return Array(
            text.replacingOccurrences(
                of: "\"\(field)\":\(versionPlaceholderValue)", with: "\"\(field)\":\"@@VERSION@@\""
            ).utf8)
    }
}
