import BatonCommandLine
import BatonLock
import BatonRedis
import BatonTokens
import Foundation

/// What the token commands share: where Redis is, the key prefix, a client and a store.
///
/// Redis URL: `--redis`, then `BATON_REDIS_URL`, then the config file's `redis_url`, then
/// `redis://127.0.0.1:6379/0`. Prefix: `--prefix`, then `BATON_PREFIX`, then the config file's
/// `prefix`, then `oauth`.
struct CommandContext {
    let client: RedisClient
    let store: TokenStore
    let prefix: String

    init(_ arguments: ParsedArguments, poolSize: Int = 4) throws {
        let environment = ProcessInfo.processInfo.environment
        let prefix = arguments.value("prefix") ?? environment["BATON_PREFIX"] ?? "oauth"
        _ = try TokenKeys(prefix: prefix, service: "probe")
        client = try RedisClient(url: Baton.redisURL(arguments), options: .init(poolSize: poolSize))
        store = TokenStore(client: client, prefix: prefix)
        self.prefix = prefix
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
