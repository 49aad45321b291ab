import BatonLock

/// The Redis key schema of the token layer, a contract that workers, operators and n8n
/// workflows depend on. Every per-service key carries the hash tag `{service}`, so one service's
/// keys share a Redis Cluster slot and one Lua script can touch them all.
///
/// | key | type | holds |
/// |---|---|---|
/// | `prefix:{svc}:token` | string, JSON | the access-token record (``TokenRecord``), readable by workers |
/// | `prefix:{svc}:secret` | string, JSON | the refresh token in a versioned envelope (``SecretEnvelope``); coordinator only |
/// | `prefix:{svc}:lock`, `prefix:{svc}:fence` | lock | the service's refresh lock and fencing counter |
/// | `prefix:{svc}:events` | stream, capped ~1000 | audit events, never a secret |
/// | `prefix:{svc}:forced` | string with a TTL | the forced-refresh gate: set while a forced refresh happened less than `forced_refresh_min_interval` ago |
/// | `prefix:{svc}:awaiting-replicas` | hash with a TTL | while a rotated refresh token is on the master but fewer replicas than `persist_replicas` acknowledged it: who waits (`replica`, `fence`), `required`, `acknowledged`, `since` (ms, server clock), `attempts` (``AwaitingReplicas``) |
/// | `prefix:{svc}:unknown-key` | hash with a TTL | replicas that met a secret sealed under a key they lack: replica → kid (``TokenStore/reportUnknownKey(service:kid:replica:)``) |
/// | `prefix:services` | set | the known service names |
/// | `prefix:refresh-requests` | list | forced-refresh requests from workers |
/// | channel `prefix:{svc}:changed` | pub/sub | the new record's version, after every write |
public struct TokenKeys: Sendable, Hashable {
    /// The key prefix (default `oauth`).
    public let prefix: String
    /// The service name.
    public let service: String
    /// The lock keys of the service (`prefix:{svc}:lock`, `prefix:{svc}:fence`).
    public let lock: LockKeys

    /// Builds the key names after validating the prefix and the service name (letters, digits,
    /// `-`, `_`, `.`, at most 128 characters).
    /// - Throws: ``BatonLock/LockError/invalidName(_:reason:)`` naming what is wrong.
    public init(prefix: String, service: String) throws {
        self.lock = try LockKeys(prefix: prefix, name: service, kind: "service name")
        self.prefix = prefix
        self.service = service
    }

    /// `prefix:{svc}:token`
    public var token: String { "\(prefix):{\(service)}:token" }
    /// `prefix:{svc}:secret`
    public var secret: String { "\(prefix):{\(service)}:secret" }
    /// `prefix:{svc}:events`
    public var events: String { "\(prefix):{\(service)}:events" }
    /// `prefix:{svc}:forced`: the forced-refresh gate (`SET NX PX forced_refresh_min_interval`).
    public var forcedGate: String { "\(prefix):{\(service)}:forced" }
    /// `prefix:{svc}:awaiting-replicas`: set while a rotated refresh token waits for replica
    /// acknowledgements (see ``AwaitingReplicas``), so that `baton status` on any host sees it.
    public var awaitingReplicas: String { "\(prefix):{\(service)}:awaiting-replicas" }
    /// `prefix:{svc}:unknown-key`: which replicas lack the key the stored secret is sealed under
    /// (replica → kid), so that `baton status` on any host shows `unknown_key`.
    public var unknownKey: String { "\(prefix):{\(service)}:unknown-key" }
    /// `prefix:{svc}:changed` (a pub/sub channel)
    public var changedChannel: String { "\(prefix):{\(service)}:changed" }
    /// `prefix:services`
    public var services: String { Self.services(prefix: prefix) }

    /// `prefix:services`: the set of known service names.
    public static func services(prefix: String) -> String { "\(prefix):services" }
    /// `prefix:refresh-requests`: the list workers push forced-refresh requests to.
    public static func refreshRequests(prefix: String) -> String { "\(prefix):refresh-requests" }
    /// `{prefix:refresh-requests}:processors`: the replicas that take forced-refresh requests.
    public static func requestProcessors(prefix: String) -> String { "{\(refreshRequests(prefix: prefix))}:processors" }
    /// `{prefix:refresh-requests}:replica:<replica>`: a replica's heartbeat.
    public static func replicaHeartbeat(prefix: String, replica: String) -> String {
        "{\(refreshRequests(prefix: prefix))}:replica:\(replica)"
    }
    /// `{prefix:refresh-requests}:processing:<replica>`: the requests a replica has taken.
    public static func processingList(prefix: String, replica: String) -> String {
        "{\(refreshRequests(prefix: prefix))}:processing:\(replica)"
    }
}
