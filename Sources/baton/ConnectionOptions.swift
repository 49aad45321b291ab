import BatonCommandLine
import BatonConfig
import BatonRedis
import BatonSupport
import Foundation

/// `--redis URL`, `--prefix PREFIX` and `--config FILE`: declared once, for every command that
/// talks to Redis (swift-argument-parser's `@OptionGroup` is the model), and resolved once, here,
/// in one order:
///
/// - Redis URL: `--redis` (never with a password: ``redisOverride(_:)``), then `BATON_REDIS_URL`,
///   then the configuration file's `redis_url`, then `redis://127.0.0.1:6379/0`.
/// - Redis password, for a URL that carries none: `BATON_REDIS_PASSWORD`, then the configuration
///   file's `redis_password_file` (``withRedisPassword(_:password:)``).
/// - Prefix: `--prefix`, then `BATON_PREFIX`, then the configuration file's `prefix`, then the
///   command's default (`oauth` for tokens, `baton` for locks).
/// - Configuration file: `--config`, then `BATON_CONFIG`.
///
/// An environment variable that is set but empty counts as unset, as it does for the
/// configuration file's overrides. Which of the three options a command takes is its
/// ``ConnectionOptions`` value; the order never changes.
struct ConnectionOptions: Sendable {
    /// Where the key prefix comes from, for commands that take `--prefix`.
    struct PrefixRule: Sendable {
        /// Used when nothing else names a prefix.
        var defaultValue: String
        /// Whether `BATON_PREFIX` applies (not for `baton bench`, which must never write under a
        /// real prefix).
        var readsEnvironment = true
    }

    /// How a command uses the configuration file.
    enum ConfigurationUse: Sendable {
        /// No `--config`; `BATON_CONFIG` is ignored.
        case none
        /// Read when `--config` or `BATON_CONFIG` names one.
        case optional
        /// Needed: a usage error without one.
        case required
    }

    /// The prefix rule; `nil` for a command without `--prefix`.
    var prefix: PrefixRule?
    /// Whether and how the configuration file is read.
    var configuration: ConfigurationUse

    static let redisOption = OptionSpecification.value("redis", "URL")
    static let prefixOption = OptionSpecification.value("prefix", "PREFIX")
    static let configOption = OptionSpecification.value("config", "FILE")

    /// `get`, `seed`, `status`, `watch`: prefix `oauth`, configuration when given.
    static let tokens = ConnectionOptions(
        prefix: PrefixRule(defaultValue: BatonDefaults.tokenPrefix), configuration: .optional)
    /// `serve`, `refresh`: the token prefix, and the configuration is needed.
    static let coordinator = ConnectionOptions(
        prefix: PrefixRule(defaultValue: BatonDefaults.tokenPrefix), configuration: .required)
    /// `lock ...`: prefix `baton`, no configuration file.
    static let locks = ConnectionOptions(
        prefix: PrefixRule(defaultValue: BatonDefaults.lockPrefix), configuration: .none)
    /// `bench`: its own prefix (not `BATON_PREFIX`), no configuration file.
    static let bench = ConnectionOptions(
        prefix: PrefixRule(defaultValue: BatonDefaults.benchPrefix, readsEnvironment: false),
        configuration: .none)
    /// `ping`: only where Redis is.
    static let redisOnly = ConnectionOptions(prefix: nil, configuration: .none)

    /// The options as a group for a ``CommandSpecification``: `--redis`, then `--prefix` and
    /// `--config` when the command takes them (`--config FILE` unbracketed when required).
    var group: OptionGroup {
        var options = [Self.redisOption]
        var synopsis = [Self.redisOption.synopsis]
        if prefix != nil {
            options.append(Self.prefixOption)
            synopsis.append(Self.prefixOption.synopsis)
        }
        switch configuration {
        case .none: break
        case .optional:
            options.append(Self.configOption)
            synopsis.append(Self.configOption.synopsis)
        case .required:
            options.append(Self.configOption)
            synopsis.insert(Self.configOption.usage, at: 0)
        }
        return OptionGroup(options, synopsis: synopsis.joined(separator: " "))
    }

    /// What the options, the environment and the configuration file decided.
    struct Resolved {
        /// The Redis URL to connect to, with the password of `BATON_REDIS_PASSWORD` or
        /// `redis_password_file` put in (it may carry a password: never print it, see
        /// ``BatonRedis/RedisEndpoint/redacted(_:)``).
        var redisURL: String
        /// The key prefix, not yet validated (the key schema does that); `nil` for a command
        /// without `--prefix`.
        var prefix: String?
        /// The configuration file, when one was read.
        var configuration: BatonConfiguration?
        /// Its path, for re-reading it (`baton serve` on SIGHUP).
        var configurationPath: String?
        /// How secrets are protected: the configuration's ``BatonConfig/BatonConfiguration/encryption``,
        /// else `BATON_ENCRYPTION_KEYS`, else `nil` (nothing says: a command that stores or reads
        /// a refresh token refuses to guess).
        var encryption: SecretEncryption?
    }

    /// Resolves the connection settings of a command, in the order documented on the type.
    /// - Parameter requireConfiguration: overrides ``configuration`` for this call (`baton seed`
    ///   with an authorization code needs the file, with a refresh token it does not).
    /// - Throws: ``UsageError`` for a `--redis` URL with a password, or a missing configuration
    ///   file that is needed; ``BatonConfig/ConfigurationError`` for a bad file.
    func resolve(
        _ arguments: ParsedArguments, environment: [String: String] = ProcessInfo.processInfo.environment,
        requireConfiguration: Bool? = nil
    ) throws -> Resolved {
        let redisOverride = try Self.redisOverride(arguments)  // refused before anything else happens
        var configuration: BatonConfiguration?
        var path: String?
        if self.configuration != .none {
            path =
                arguments.value(Self.configOption.name)
                ?? BatonDefaults.Environment.value(BatonDefaults.Environment.configuration, in: environment)
            if let path {
                configuration = try BatonConfiguration.load(path: path, environment: environment)
            } else if requireConfiguration ?? (self.configuration == .required) {
                throw Self.missingConfiguration
            }
        }
        let prefix = self.prefix.map { rule in
            arguments.value(Self.prefixOption.name)
                ?? (rule.readsEnvironment
                    ? BatonDefaults.Environment.value(BatonDefaults.Environment.prefix, in: environment) : nil)
                ?? configuration?.prefix
                ?? rule.defaultValue
        }
        let redisURL = try Self.withRedisPassword(
            redisOverride
                ?? BatonDefaults.Environment.value(BatonDefaults.Environment.redisURL, in: environment)
                ?? configuration?.redisURL
                ?? BatonDefaults.redisURL,
            password: configuration.map(\.redisPassword)
                ?? BatonDefaults.Environment.value(BatonDefaults.Environment.redisPassword, in: environment).map(
                    Secret.init))
        let encryption = try configuration?.encryption ?? Self.environmentEncryption(environment)
        return Resolved(
            redisURL: redisURL, prefix: prefix, configuration: configuration, configurationPath: path,
            encryption: encryption)
    }

    /// `url` with `password` (from `BATON_REDIS_PASSWORD` or `redis_password_file`) as the
    /// password of its user; `url` itself when there is no password.
    /// - Throws: ``UsageError`` when `url` carries a password too (the configuration file refuses
    ///   that already; this catches `BATON_REDIS_URL` with `BATON_REDIS_PASSWORD` and no file). The
    ///   message repeats neither.
    static func withRedisPassword(_ url: String, password: Secret?) throws -> String {
        guard let password else { return url }
        guard let combined = RedisURLCredentials.inserting(password: password.reveal(), into: url) else {
            throw UsageError(
                """
                the Redis URL (\(BatonDefaults.Environment.redisURL) or redis_url) carries a password, and \
                \(BatonDefaults.Environment.redisPassword) or redis_password_file gives one too: keep one. To name an ACL \
                user and take its password from \(BatonDefaults.Environment.redisPassword), write the URL as \
                redis://USER:@host:port/db.
                """)
        }
        return combined
    }

    /// The keyring of `BATON_ENCRYPTION_KEYS`, for a command run without a configuration file.
    /// - Throws: ``BatonSupport/KeyringError`` for a malformed keyring (never quoting a key).
    static func environmentEncryption(_ environment: [String: String]) throws -> SecretEncryption? {
        guard let text = BatonDefaults.Environment.value(BatonDefaults.Environment.encryptionKeys, in: environment)
        else { return nil }
        return .keyring(try Keyring(parsing: text, source: BatonDefaults.Environment.encryptionKeys))
    }

    /// The error of a command that needs the configuration file and was given none.
    static var missingConfiguration: UsageError {
        UsageError(
            "this command needs the configuration file: pass --config FILE or set \(BatonDefaults.Environment.configuration)"
        )
    }

    /// `--redis URL`, if given (the only place that reads it).
    ///
    /// A URL with a password, or anything else ``RedisEndpoint/redacted(_:)`` would hide (a
    /// user-info part, `?password=`, any query parameter but a numeric `db`), is refused: the
    /// arguments of a process are visible to every local user (`ps`, `/proc/PID/cmdline`). The
    /// message never repeats the URL.
    /// - Throws: ``UsageError`` (exit code 2) pointing to `BATON_REDIS_PASSWORD`, `BATON_REDIS_URL` or
    ///   `redis_url`.
    static func redisOverride(_ arguments: ParsedArguments) throws -> String? {
        guard let url = arguments.value(redisOption.name) else { return nil }
        if RedisEndpoint.containsCredentials(url) {
            throw UsageError(
                """
                --redis must not carry a password (it has a user-info part or a query parameter other than db): \
                command-line arguments are visible to every user of this machine (ps, /proc/PID/cmdline). \
                Put the password in \(BatonDefaults.Environment.redisPassword) (or the config file's redis_password_file), \
                or the whole URL in the environment variable \(BatonDefaults.Environment.redisURL) or the config file's redis_url.
                """)
        }
        return url
    }
}
