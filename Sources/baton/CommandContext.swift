import BatonCommandLine
import BatonConfig
import BatonLock
import BatonRedis
import BatonTokens
import Foundation

/// What the token commands share: the configuration (when given), where Redis is, the key
/// prefix, a client and a store.
///
/// Redis URL: `--redis`, then `BATON_REDIS_URL`, then the config file's `redis_url`, then
/// `redis://127.0.0.1:6379/0` (`--redis` without a password: ``Baton/redisOption(_:)``). Prefix: `--prefix`, then `BATON_PREFIX`, then the config file's
/// `prefix`, then `oauth`. The config file is `--config FILE`, else `BATON_CONFIG`.
struct CommandContext {
    let configuration: BatonConfiguration?
    let client: RedisClient
    let store: TokenStore
    let prefix: String

    init(_ arguments: ParsedArguments, requireConfiguration: Bool = false, poolSize: Int = 4) throws {
        let redisOverride = try Baton.redisOption(arguments)  // refused before anything else happens
        let environment = ProcessInfo.processInfo.environment
        let path = arguments.value("config") ?? environment["BATON_CONFIG"]
        if let path {
            configuration = try BatonConfiguration.load(path: path, environment: environment)
        } else if requireConfiguration {
            throw UsageError("this command needs the configuration file: pass --config FILE or set BATON_CONFIG")
        } else {
            configuration = nil
        }
        let prefix = arguments.value("prefix") ?? environment["BATON_PREFIX"] ?? configuration?.prefix ?? "oauth"
        _ = try TokenKeys(prefix: prefix, service: "probe")
        let url = redisOverride ?? environment["BATON_REDIS_URL"] ?? configuration?.redisURL ?? "redis://127.0.0.1:6379/0"
        client = try RedisClient(url: url, options: .init(poolSize: poolSize))
        store = TokenStore(client: client, prefix: prefix)
        self.prefix = prefix
    }

    /// The configured service `name`, or a usage error listing the configured ones.
    func service(_ name: String) throws -> ServiceConfiguration {
        guard let configuration else { throw UsageError("no configuration: pass --config FILE or set BATON_CONFIG") }
        guard let service = configuration.service(name) else {
            let known = configuration.services.map(\.name).joined(separator: ", ")
            throw UsageError("'\(name)' is not a service in the configuration (configured: \(known.isEmpty ? "none" : known))")
        }
        return service
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
