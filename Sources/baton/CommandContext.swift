import BatonCommandLine
import BatonConfig
import BatonLock
import BatonRedis
import BatonSupport
import BatonTokens
import Foundation

/// What the token commands share: the configuration (when given), where Redis is, the key
/// prefix, a client and a store. Where each comes from, and in which order, is decided by
/// ``ConnectionOptions/resolve(_:environment:requireConfiguration:)``.
struct CommandContext {
    let configuration: BatonConfiguration?
    let client: RedisClient
    let store: TokenStore
    let prefix: String
    /// How secrets are protected, when the configuration or `BATON_ENCRYPTION_KEYS` says.
    let encryption: SecretEncryption?

    init(
        _ arguments: ParsedArguments, options: ConnectionOptions = .tokens, requireConfiguration: Bool? = nil,
        poolSize: Int = 4
    ) throws {
        let connection = try options.resolve(arguments, requireConfiguration: requireConfiguration)
        configuration = connection.configuration
        let prefix = connection.prefix ?? BatonDefaults.tokenPrefix
        _ = try TokenKeys(prefix: prefix, service: "probe")
        client = try RedisClient(url: connection.redisURL, options: .init(poolSize: poolSize))
        // Without a keyring or an explicit "none", the store can still read records; a command
        // that stores or reads a refresh token asks for the keys first (``requireEncryption()``).
        encryption = connection.encryption
        store = TokenStore(client: client, prefix: prefix, encryption: connection.encryption ?? .none)
        self.prefix = prefix
    }

    /// The configured service `name`, or a usage error listing the configured ones.
    func service(_ name: String) throws -> ServiceConfiguration {
        guard let configuration else {
            throw UsageError("no configuration: pass --config FILE or set \(BatonDefaults.Environment.configuration)")
        }
        guard let service = configuration.service(name) else {
            let known = configuration.services.map(\.name).joined(separator: ", ")
            throw UsageError(
                "'\(name)' is not a service in the configuration (configured: \(known.isEmpty ? "none" : known))")
        }
        return service
    }

    /// Refuses to go on when nothing says how refresh tokens are protected: storing one in the
    /// clear by accident is what encryption by default exists to prevent.
    func requireEncryption(for command: String) throws {
        guard encryption == nil else { return }
        throw UsageError(
            """
            \(command) stores or reads refresh tokens, and nothing says how they are encrypted: set \(BatonDefaults.Environment.encryptionKeys) \
            (the keyring, `baton keygen` makes a key) or pass --config with an "encryption" setting
            """)
    }

    func makeLocks() throws -> LockService {
        try LockService(client: client, prefix: prefix)
    }

    func shutDown() {
        client.shutDown()
    }

    /// `host:pid`, for `refreshed_by` and events of one-off CLI commands.
    static let processLabel = "\(ProcessInfo.processInfo.hostName):\(ProcessInfo.processInfo.processIdentifier)"
}
