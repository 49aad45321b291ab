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
    /// Seals refresh tokens before they reach Redis and opens them after.
    public let sealer: SecretSealer

    /// Where this store's data lives: the Redis address, database and key prefix
    /// (`127.0.0.1:6379/0/oauth`). Identifies spooled tokens that belong here.
    public var location: String { "\(client.endpoint.address)/\(client.endpoint.database)/\(prefix)" }

    /// Creates a store over `client` with keys under `prefix`, protecting refresh tokens as
    /// `encryption` says. A store that only reads records (a worker's) has no use for keys:
    /// pass `.none`, and every read of a sealed secret fails with ``TokenStoreError/unknownKey(service:kid:)``.
    public init(client: RedisClient, prefix: String = BatonDefaults.tokenPrefix, encryption: SecretEncryption) {
        self.client = client
        self.prefix = prefix
        self.sealer = SecretSealer(prefix: prefix, encryption: encryption)
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
        try await readRecords(services, batchSize: batchSize).records
    }

    /// ``records(_:batchSize:)``, and the services whose record key holds something that is not a
    /// record (garbage, or a key of another type), with the reason.
    public func readRecords(_ services: [String], batchSize: Int = 500) async throws -> (
        records: [String: TokenRecord], unreadable: [String: String]
    ) {
        var records: [String: TokenRecord] = [:]
        var unreadable: [String: String] = [:]
        for start in stride(from: 0, to: services.count, by: batchSize) {
            let batch = Array(services[start..<min(services.count, start + batchSize)])
            let replies = try await client.pipeline(try batch.map { RedisCommand("GET", try keys($0).token) })
            for (service, reply) in zip(batch, replies) {
                if case .error(let message) = reply {
                    unreadable[service] = String(message.prefix(80))
                } else if let bytes = reply.bytes {
                    do {
                        records[service] = try TokenRecord.decode(bytes)
                    } catch {
                        unreadable[service] = "not a token record"
                    }
                }
            }
        }
        return (records, unreadable)
    }

    /// The stored refresh token of `service`, opened, or `nil` when none was seeded.
    /// - Throws: ``TokenStoreError/unknownKey(service:kid:)``, ``TokenStoreError/undecryptable(service:kid:)``
    ///   or ``TokenStoreError/corruptSecret(service:reason:)``: the caller must leave it alone.
    public func secret(_ service: String) async throws -> SecretEnvelope? {
        guard let bytes = try await client.get(keys(service).secret) else { return nil }
        return try sealer.open(bytes, service: service)
    }

    /// The stored envelope of `service` exactly as stored, and parsed (not opened), or `nil`.
    public func storedSecret(_ service: String) async throws -> (bytes: [UInt8], stored: SecretEnvelope.Stored)? {
        guard let bytes = try await client.get(keys(service).secret) else { return nil }
        return (bytes, try SecretEnvelope.decode(bytes, service: service))
    }

    /// How long a replica's ``reportUnknownKey(service:kid:replica:)`` stays visible unless repeated.
    public static let unknownKeyReportLifetime: Duration = .seconds(900)

    /// Records that `replica` met the secret of `service` sealed under `kid`, which its keyring
    /// lacks (`prefix:{svc}:unknown-key`, replica → kid, with a TTL), and appends an
    /// `unknown_key` event.
    public func reportUnknownKey(service: String, kid: String, replica: String) async throws {
        let keys = try keys(service)
        let replies = try await client.pipeline([
            RedisCommand("HSET", keys.unknownKey, replica, kid),
            RedisCommand("PEXPIRE", keys.unknownKey, Self.unknownKeyReportLifetime.milliseconds),
            RedisCommand(
                "XADD", keys.events, "MAXLEN", "~", 1000, "*", "event", TokenEvent.Kind.unknownKey.rawValue, "service",
                service, "replica", replica, "kid", kid),
        ])
        for reply in replies {
            if case .error(let message) = reply {
                throw RedisError.server(RedisServerError(message: message, command: "unknown-key report"))
            }
        }
    }

    /// Withdraws the reports of `replica` (``reportUnknownKey(service:kid:replica:)``) for a kid
    /// its keyring now holds: a replica restarted with the missing key no longer shows as lacking
    /// it (nor stops others from handing it forced requests) until the report's TTL runs out.
    public func withdrawUnknownKeyReports(_ services: [String], replica: String) async throws {
        guard let keyring = sealer.encryption.keyring, !services.isEmpty else { return }
        let keys = try services.map { try self.keys($0).unknownKey }
        let kids = try await client.pipeline(keys.map { RedisCommand("HGET", $0, replica) })
        let held = zip(keys, kids).filter { _, kid in kid.string.map { keyring.key(kid: $0) != nil } ?? false }
        guard !held.isEmpty else { return }
        _ = try await client.pipeline(held.map { key, _ in RedisCommand("HDEL", key, replica) })
    }

    /// For each of `services`, the replicas that reported a key they lack (replica → kid).
    public func unknownKeyReports(_ services: [String]) async throws -> [String: [String: String]] {
        let replies = try await client.pipeline(try services.map { RedisCommand("HGETALL", try keys($0).unknownKey) })
        var reports: [String: [String: String]] = [:]
        for (service, reply) in zip(services, replies) {
            let words = (reply.array ?? []).compactMap(\.string)
            guard words.count >= 2 else { continue }
            reports[service] = Dictionary(
                stride(from: 0, to: words.count - 1, by: 2).map { (words[$0], words[$0 + 1]) }
            ) { first, _ in first }
        }
        return reports
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
        let scriptKeys = [keys.token, keys.secret, keys.events, keys.lock.fence, keys.lock.lock]
        func arguments(envelope: [UInt8], version: Int64?) -> [any RedisArgumentConvertible] {
            [
                fence, recordJSON, envelope, event.rawValue, replica, keys.changedChannel, owner,
                errorCode ?? "", service, usedSecret ?? "", version.map(String.init) ?? "",
            ]
        }
        guard let secret else {
            let (reply, acknowledged) = try await runPersist(
                keys: scriptKeys, arguments: arguments(envelope: [], version: nil), acknowledgement: acknowledgement,
                routingKey: keys.token)
            return try await persistOutcome(reply, acknowledged: acknowledged, service: service)
        }
        // First under the writer's own fence, as a write without a secret would be; above it only
        // when a newer version is already stored.
        return try await withVersion(keys, first: fence, command: "token persist script") { version in
            let envelope = try sealer.seal(
                SecretEnvelope(refreshToken: secret, fence: version, client: client), service: service)
            let (reply, acknowledged) = try await runPersist(
                keys: scriptKeys, arguments: arguments(envelope: envelope, version: version),
                acknowledgement: acknowledgement, routingKey: keys.token)
            if let parts = reply.array, parts.count == 5, parts[0].integer == 2, let newer = parts[1].integer {
                return .overtaken(by: newer)
            }
            return .done(try await persistOutcome(reply, acknowledged: acknowledged, service: service))
        }
    }

    /// What a write under an allocated version did.
    private enum VersionedWrite<Result> {
        /// It happened (or was refused by the fencing rules): this is its result.
        case done(Result)
        /// Another write reached this version first: nothing was written.
        case overtaken(by: Int64)
    }

    /// How many times a write with a secret allocates a new version before giving up (each retry
    /// means another write landed between the allocation and the script).
    static let maximumVersionAttempts = 16

    /// Runs `write` under a version decided before it (a sealed envelope binds its fence, so a
    /// write with a secret knows its version before the script runs): `first`, or a freshly
    /// allocated one, and again a freshly allocated one above the newer version whenever the
    /// stored state had reached the one tried.
    private func withVersion<Result>(
        _ keys: TokenKeys, first: Int64?, command: String, _ write: (Int64) async throws -> VersionedWrite<Result>
    ) async throws -> Result {
        var floor = first ?? 0
        var version: Int64
        if let first { version = first } else { version = try await allocateVersion(keys, above: floor) }
        for _ in 1...Self.maximumVersionAttempts {
            switch try await write(version) {
            case .done(let result): return result
            case .overtaken(let newer):
                floor = max(floor, newer)
                version = try await allocateVersion(keys, above: floor)
            }
        }
        throw RedisError.unexpectedReply(
            command: command,
            reply:
                "its allocated version was overtaken by concurrent writes \(Self.maximumVersionAttempts) times in a row"
        )
    }

    /// A version for a write with a secret (``TokenScripts/allocateVersion``).
    private func allocateVersion(_ keys: TokenKeys, above floor: Int64) async throws -> Int64 {
        let reply = try await client.run(TokenScripts.allocateVersion, keys: [keys.lock.fence], arguments: [floor])
        guard let version = reply.integer else {
            throw RedisError.unexpectedReply(command: "version allocation script", reply: reply.description)
        }
        return version
    }

    /// Runs the persist script: without replica acknowledgements on the shared pipelined
    /// connection; with them, the script and its `WAIT` on one pooled connection of their own.
    private func runPersist(
        keys: [String], arguments: [any RedisArgumentConvertible], acknowledgement: ReplicaAcknowledgement,
        routingKey: String
    ) async throws -> (RESPValue, Int?) {
        guard acknowledgement.isRequired else {
            return (try await client.run(TokenScripts.persist, keys: keys, arguments: arguments), nil)
        }
        return try await client.withConnection(routingKey: routingKey) { connection in
            let reply = try connection.run(TokenScripts.persist, keys: keys, arguments: arguments)
            let generation = connection.generation
            // Only a stored secret needs replicas; WAIT counts this connection's writes, so a
            // connection replaced since the script counts as not acknowledged (the retry writes again).
            guard reply.array?.count == 5, reply.array?[0].integer != 2, reply.array?[3].integer == 1 else {
                return (reply, Int?.none)
            }
            let acknowledged = try connection.waitForReplicas(
                acknowledgement.replicas, timeout: acknowledgement.timeout, writtenIn: generation)
            return (reply, acknowledged)
        }
    }

    /// The persist script's reply as an outcome; registers a service's first record.
    private func persistOutcome(_ reply: RESPValue, acknowledged: Int?, service: String) async throws -> (
        outcome: PersistOutcome, acknowledged: Int?
    ) {
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
        let fence = try await withVersion(keys, first: nil, command: "token seed script") { fence in
            let envelope = try sealer.seal(
                SecretEnvelope(refreshToken: refreshToken, fence: fence, client: client), service: service)
            let reply = try await self.client.run(
                TokenScripts.seed,
                keys: [keys.secret, keys.lock.fence, keys.token, keys.events],
                arguments: [envelope, service, replica, keys.changedChannel, fence]
            )
            guard let written = reply.integer else {
                throw RedisError.unexpectedReply(command: "token seed script", reply: reply.description)
            }
            return written < 0 ? .overtaken(by: -written) : .done(written)
        }
        try await register(service)
        return fence
    }

    /// Seals the stored secret of `service` again under the primary key (`baton rekey`), if it
    /// is still exactly `stored` (compare-and-set: a rotation or seed in between wins, and the
    /// caller reads again). Token, fence and identity stay the same, so refreshes in flight are
    /// unaffected.
    /// - Returns: whether it was replaced.
    public func reseal(
        service: String, stored: (bytes: [UInt8], stored: SecretEnvelope.Stored), replica: String
    ) async throws -> Bool {
        let keys = try keys(service)
        let envelope = try sealer.open(stored.stored, service: service)
        let sealed = try sealer.seal(envelope, service: service)
        let reply = try await client.run(
            TokenScripts.reseal, keys: [keys.secret, keys.events],
            arguments: [
                stored.bytes, sealed, service, replica, sealer.encryption.keyring?.primary.kid ?? "none",
                stored.stored.kid ?? "none", stored.stored.fence,
            ])
        guard let replaced = reply.integer else {
            throw RedisError.unexpectedReply(command: "token reseal script", reply: reply.description)
        }
        return replaced == 1
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
