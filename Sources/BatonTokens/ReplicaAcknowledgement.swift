import BatonConfig
import BatonRedis
import BatonSupport

/// How many Redis replicas must have a rotated refresh token before the refresh that got it is
/// done (`persist_replicas`, `persist_timeout`).
///
/// After the fenced persist of a rotated token, `WAIT replicas timeout` runs on the same
/// connection. While fewer replicas acknowledge, the token stays in the spool, the lock stays
/// held and the persist is retried: a failover to a replica that never received the token would
/// otherwise lose the only valid refresh token (the provider has already invalidated the old one).
public struct ReplicaAcknowledgement: Sendable, Hashable {
    /// How many replicas must acknowledge. Default: 0 (no `WAIT` is sent).
    public var replicas: Int
    /// How long each `WAIT` waits (at least 1 ms: `WAIT` with 0 waits forever). Default: 1 second.
    public var timeout: Duration

    /// Creates settings; every parameter has the default documented on its property.
    public init(replicas: Int = 0, timeout: Duration = .seconds(1)) {
        self.replicas = replicas
        self.timeout = timeout
    }

    /// The settings of a configuration file.
    public init(_ configuration: BatonConfiguration) {
        self.init(replicas: configuration.persistReplicas, timeout: configuration.persistTimeout)
    }

    /// No acknowledgement asked for: the behaviour of `persist_replicas: 0`.
    public static let none = ReplicaAcknowledgement()

    /// Whether a `WAIT` is sent at all.
    public var isRequired: Bool { replicas > 0 }

    /// `WAIT replicas timeout_ms`.
    var waitCommand: RedisCommand { RedisCommand("WAIT", replicas, max(1, timeout.milliseconds)) }

    /// How long the client waits for `WAIT`'s reply: its own timeout plus room for a slow network.
    var replyTimeout: Duration { .milliseconds(max(1, timeout.milliseconds)) + .seconds(2) }

    /// How long the `awaiting-replicas` mark outlives its last attempt: several rounds of `WAIT`
    /// plus the longest pause between persist attempts, so it lasts while someone is still
    /// trying and goes away soon after a process that was trying stops.
    var markLifetime: Duration { (timeout + TokenRefresher.persistRetryCap) * 3 }
}

/// One attempt's news about a rotated refresh token waiting for replicas, for logs (never a
/// secret): reported for every attempt that fell short, and once when a token that fell short
/// is acknowledged after all.
public struct ReplicaAcknowledgementReport: Sendable, Hashable, CustomStringConvertible {
    /// The service.
    public let service: String
    /// The fence of the lease under which the provider rotated the token.
    public let fence: Int64
    /// How many replicas acknowledged this attempt's write.
    public let acknowledged: Int
    /// How many must (``ReplicaAcknowledgement/replicas``).
    public let required: Int
    /// Attempts so far, this one included (counted across spool replays by the mark in Redis).
    public let attempt: Int
    /// How long the token has been waiting (server clock when the mark could be written).
    public let waited: Duration

    /// Whether this attempt reached the required count (a late acknowledgement).
    public var isAcknowledged: Bool { acknowledged >= required }

    /// One line for people: what happened, and what happens next.
    public var description: String {
        let counts = "\(acknowledged) of \(required) replicas acknowledged"
        let progress = "attempt \(attempt), waiting \(waited.shortDescription)"
        return isAcknowledged
            ? "the rotated refresh token of '\(service)' is on enough replicas now (\(counts); \(progress))"
            : "the rotated refresh token of '\(service)' is on the Redis master, but only \(counts) it (\(progress)); it stays in the spool and is written again until enough do: check replication (INFO replication)"
    }
}

/// A rotated refresh token waiting for replica acknowledgements, as `baton status` reads it from
/// `prefix:{svc}:awaiting-replicas` (see ``TokenKeys/awaitingReplicas``).
public struct AwaitingReplicas: Sendable, Hashable {
    /// Who waits: the replica id or `host:pid`.
    public let replica: String
    /// The fence of the lease under which the token was rotated.
    public let fence: Int64
    /// How many replicas must acknowledge.
    public let required: Int
    /// How many acknowledged the last attempt.
    public let acknowledged: Int
    /// Since when it waits (ms since the epoch, server clock).
    public let since: Int64
    /// Attempts so far.
    public let attempts: Int

    /// The fields of the hash, in the order ``init(fields:)`` reads them (`HMGET`).
    static let fieldNames = ["replica", "fence", "required", "acknowledged", "since", "attempts"]

    /// Parses an `HMGET` reply over ``fieldNames``; `nil` when the hash is absent or incomplete.
    init?(fields: [RESPValue]) {
        guard fields.count == Self.fieldNames.count, let replica = fields[0].string,
            let fence = fields[1].integer, let required = fields[2].integer, let acknowledged = fields[3].integer,
            let since = fields[4].integer, let attempts = fields[5].integer
        else { return nil }
        self.replica = replica
        self.fence = fence
        self.required = Int(required)
        self.acknowledged = Int(acknowledged)
        self.since = since
        self.attempts = Int(attempts)
    }
}
