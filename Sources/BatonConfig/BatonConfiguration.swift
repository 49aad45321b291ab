import BatonSupport
import Foundation

/// Baton's configuration file: one JSON file that every command and the daemon read
/// (`--config FILE` or `BATON_CONFIG`; `BATON_REDIS_URL`, `BATON_PREFIX`, `BATON_ENCRYPTION_KEYS`
/// and `BATON_REDIS_PASSWORD` override it).
/// See README "Configuration" for every key.
public struct BatonConfiguration: Sendable {
    /// `redis_url`. Default: `redis://127.0.0.1:6379/0`.
    public var redisURL: String
    /// `prefix`: the key prefix. Default: `oauth`.
    public var prefix: String
    /// `lock_ttl`: the refresh lock's lease. Default: 30 s.
    public var lockTTL: Duration
    /// `lock_wait`: how long a refresh waits for another holder. Default: 10 s.
    public var lockWait: Duration
    /// `max_concurrent_refreshes` (per replica). Default: 32.
    public var maxConcurrentRefreshes: Int
    /// `forced_refresh_min_interval`, for services that do not set their own. Default: 5 s.
    public var forcedRefreshMinInterval: Duration
    /// `services`, in file order.
    public var services: [ServiceConfiguration]
    /// `state_dir`: where rotated refresh tokens wait on disk until Redis has them (see
    /// README "Durability"). Must be persistent storage. `nil` (the default) means
    /// ``defaultStateDirectory(environment:)``.
    public var stateDirectory: String? = nil
    /// `persist_replicas`: how many Redis replicas must acknowledge (`WAIT`) a rotated refresh
    /// token before the refresh that got it is done; until then the token stays in the spool, the
    /// lock stays held and the write is retried (see README "Replica acknowledgements").
    /// Default: 0 (no `WAIT` is sent).
    public var persistReplicas: Int = 0
    /// `persist_timeout`: how long each `WAIT` for ``persistReplicas`` waits. Default: 1 s.
    public var persistTimeout: Duration = .seconds(1)
    /// How refresh tokens are protected at rest: `BATON_ENCRYPTION_KEYS` when set, else the
    /// file's `encryption` (`{"keys_file": PATH}` or `"none"`).
    public var encryption: SecretEncryption = .none
    /// The Redis password kept outside the URL: `BATON_REDIS_PASSWORD` when set, else the contents
    /// of `redis_password_file` (mode 0600 or stricter, relative to the file's folder); `nil` when
    /// neither is set. Used only with a Redis URL that carries no password of its own (a URL that
    /// does is a configuration problem then); goes into the URL as the password of its user
    /// (`redis://USER:@host` names one). Default: `nil`.
    public var redisPassword: Secret? = nil
    /// What works but should change, one sentence each (never quoting a secret or a URL):
    /// `encryption` is `"none"`, or `redis_url` has an inline password. `baton config check`
    /// prints each to standard error as `warning: ...`; `baton serve` logs each as a `warning`
    /// line at every start. Default: none.
    public var warnings: [String] = []
    /// `alerts`: the webhooks `baton serve` sends (see ``AlertsConfiguration``). Default: `nil` (none).
    public var alerts: AlertsConfiguration? = nil
    /// `http`: the listener of `baton serve` (probes and metrics). Default: on 127.0.0.1:9464.
    public var http = HTTPConfiguration()

    /// The default `state_dir`: `/var/lib/baton` when it exists and is writable (or can be
    /// created), else `$XDG_STATE_HOME/baton`, else `$HOME/.local/state/baton`.
    public static func defaultStateDirectory(environment: [String: String] = ProcessInfo.processInfo.environment)
        -> String
    {
        let system = "/var/lib/baton"
        let manager = FileManager.default
        if manager.isWritableFile(atPath: system)
            || (!manager.fileExists(atPath: system) && manager.isWritableFile(atPath: "/var/lib"))
        {
            return system
        }
        if let state = environment["XDG_STATE_HOME"], state.hasPrefix("/") { return state + "/baton" }
        return (environment["HOME"] ?? NSHomeDirectory()) + "/.local/state/baton"
    }

    /// The `state_dir` in force: the configured one or the default.
    public func resolvedStateDirectory(environment: [String: String] = ProcessInfo.processInfo.environment) -> String {
        stateDirectory ?? Self.defaultStateDirectory(environment: environment)
    }

    /// The service called `name`.
    public func service(_ name: String) -> ServiceConfiguration? {
        services.first { $0.name == name }
    }
}

/// One entry of `services`.
public struct ServiceConfiguration: Sendable {
    /// The grant used to get tokens.
    public enum Grant: String, Sendable {
        /// `refresh_token` (RFC 6749 §6): needs a seeded refresh token. The default.
        case refreshToken = "refresh_token"
        /// `client_credentials` (§4.4): no refresh token, no seeding.
        case clientCredentials = "client_credentials"
    }

    /// How the client authenticates to the token endpoint.
    public enum AuthMethod: String, Sendable {
        /// Client id and secret in the form body. The default.
        case clientSecretPost = "client_secret_post"
        /// HTTP Basic with the form-urlencoded id and secret (RFC 6749 §2.3.1).
        case clientSecretBasic = "client_secret_basic"
    }

    /// The service name (the key under `services`).
    public var name: String
    /// `token_url`: https, or http on loopback or with `allow_insecure_http`.
    public var tokenURL: URL
    /// `grant`. Default: `refresh_token`.
    public var grant: Grant
    /// `client_id`.
    public var clientID: String
    /// The client secret from `client_secret_env` or `client_secret_file`; `nil` for a public client.
    public var clientSecret: Secret?
    /// The secret from `client_secret_fallback_env` or `client_secret_fallback_file`, tried once when
    /// the provider answers `invalid_client` to ``clientSecret`` (for rotating a secret without downtime).
    public var clientSecretFallback: Secret? = nil
    /// `auth_method`. Default: `client_secret_post`.
    public var authMethod: AuthMethod
    /// `scope`, sent with every token request when set.
    public var scope: String?
    /// `extra_params` plus `audience` / `resource`: extra form parameters, sorted by name.
    public var extraParameters: [(name: String, value: String)]
    /// `refresh_buffer` when a service does not set it: 60 s.
    public static let defaultRefreshBuffer: Duration = .seconds(60)
    /// `refresh_buffer`: refresh this long before expiry (capped at half the lifetime). Default: 60 s.
    public var refreshBuffer: Duration
    /// `default_lifetime`: assumed when the provider sends no `expires_in` and the token is no JWT. Default: 1 h.
    public var defaultLifetime: Duration
    /// `allow_insecure_http`. Default: `false`.
    public var allowInsecureHTTP: Bool
    /// `connect_timeout`. Default: 5 s, or `request_timeout` when that is shorter.
    public var connectTimeout: Duration
    /// `request_timeout`: the whole token request. Default: 15 s, or half of `lock_ttl` when that is shorter.
    public var requestTimeout: Duration
    /// `forced_refresh_min_interval`. Default: the top-level value.
    public var forcedRefreshMinInterval: Duration
}

/// Everything wrong with a configuration file, reported at once.
public struct ConfigurationError: Error, Sendable, CustomStringConvertible {
    /// One problem: where (a JSON path such as `services.my-api.refresh_buffer`) and what.
    public struct Problem: Sendable, Equatable, CustomStringConvertible {
        public let path: String
        public let message: String
        public var description: String { path.isEmpty ? message : "\(path): \(message)" }
    }

    /// The file, when read from one.
    public let file: String?
    /// Every problem found.
    public let problems: [Problem]

    public var description: String {
        let head =
            "\(file.map { "configuration \($0)" } ?? "configuration") has \(problems.count) problem\(problems.count == 1 ? "" : "s"):"
        return ([head] + problems.map { "  - \($0)" }).joined(separator: "\n")
    }
}
