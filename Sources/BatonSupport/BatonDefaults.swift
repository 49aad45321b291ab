/// Baton's defaults and the names of its environment variables, in one place: the libraries, the
/// command line, the configuration file and the help texts all read them from here.
public enum BatonDefaults {
    /// The port of a Redis URL that names none, and of the default URL.
    /// This build's version: `baton --version`, `baton_build_info`, replicas' heartbeats.
    public static let version = "0.13.0"
    public static let redisPort = 6379
    /// The schemes a Redis URL may start with (the forms are ``redisURLForms``).
    public static let redisURLSchemes = [
        "redis://", "rediss://", "unix://", "redis-sentinel://", "rediss-sentinel://", "redis-cluster://",
        "rediss-cluster://",
    ]
    /// The Redis URL forms, for messages that ask for one.
    public static let redisURLForms =
        "redis[s]://[user[:password]@]host[:port][/db], unix:///path/to/redis.sock[?db=N], redis[s]-sentinel://[user[:password]@]host1[:26379][,host2...][/db]#master-name or redis[s]-cluster://host:port[,host:port...]"
    /// The port of a Sentinel in a `redis-sentinel://` URL that names none.
    public static let sentinelPort = 26379
    /// The environment variables with the Sentinels' own credentials, when they require them
    /// (the credentials in a `redis-sentinel://` URL are the master's).
    public static let sentinelUserVariable = "BATON_SENTINEL_USER"
    /// See ``sentinelUserVariable``.
    public static let sentinelPasswordVariable = "BATON_SENTINEL_PASSWORD"
    /// `redis_url` and the CLI's Redis URL when nothing names one: `redis://127.0.0.1:6379/0`.
    public static let redisURL = "redis://127.0.0.1:\(redisPort)/0"
    /// The token layer's key prefix (`prefix` in the configuration file): `oauth`.
    public static let tokenPrefix = "oauth"
    /// The key prefix of `baton lock` commands: `baton`.
    public static let lockPrefix = "baton"
    /// The key prefix of `baton bench` (never `BATON_PREFIX`: a benchmark must not write under a
    /// real prefix): `baton-bench`.
    public static let benchPrefix = "baton-bench"

    /// Environment variables Baton reads or sets.
    public enum Environment {
        /// The configuration file, when `--config` is not given.
        public static let configuration = "BATON_CONFIG"
        /// The Redis URL; overrides the configuration file's `redis_url`. The place for a URL with
        /// a password (`--redis` refuses one).
        public static let redisURL = "BATON_REDIS_URL"
        /// The key prefix; overrides the configuration file's `prefix`.
        public static let prefix = "BATON_PREFIX"
        /// The encryption keyring (`kid:base64` entries, primary first); overrides the
        /// configuration file's `encryption`.
        public static let encryptionKeys = "BATON_ENCRYPTION_KEYS"
        /// The Redis password, for a `redis_url` written without one.
        public static let redisPassword = "BATON_REDIS_PASSWORD"
        /// Set by `baton lock run` for its command: the lock's name.
        public static let lockName = "BATON_LOCK_NAME"
        /// Set by `baton lock run` for its command: the fencing token.
        public static let lockFence = "BATON_LOCK_FENCE"

        /// The value of `name` in `environment`, or `nil` when it is unset or empty (an empty
        /// variable counts as unset everywhere, as in `VAR= baton ...`).
        public static func value(_ name: String, in environment: [String: String]) -> String? {
            guard let value = environment[name], !value.isEmpty else { return nil }
            return value
        }
    }
}
