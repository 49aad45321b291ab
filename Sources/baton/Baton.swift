import BatonCommandLine
import BatonConfig
import BatonHTTP
import BatonLock
import BatonRedis
import BatonSupport
import BatonTokens
import Foundation

/// The subcommand table and the error-to-exit-code policy.
enum Baton {
    struct Subcommand {
        let name: String
        let summary: String
        let run: @Sendable ([String]) async throws -> ExitCode
    }

    static let subcommands: [Subcommand] = [
        Subcommand(
            name: "serve", summary: "run the coordinator daemon (one of any number of replicas)", run: ServeCommand.run),
        Subcommand(
            name: "get", summary: "print a service's access token from Redis (no provider call)", run: TokenCommands.get
        ),
        Subcommand(
            name: "seed", summary: "store a service's refresh token (from a file or stdin)", run: TokenCommands.seed),
        Subcommand(
            name: "refresh", summary: "run the refresh protocol for a service in this process",
            run: RefreshCommand.refresh),
        Subcommand(
            name: "config", summary: "validate a configuration file (`baton config check FILE`)",
            run: RefreshCommand.config),
        Subcommand(name: "status", summary: "show every service's token state", run: StatusCommand.run),
        Subcommand(
            name: "watch", summary: "print token changes live as they happen (never a token)", run: WatchCommand.run),
        Subcommand(
            name: "lock", summary: "run a command under a distributed lock; inspect or release locks",
            run: LockCommand.run),
        Subcommand(name: "bench", summary: "measure Redis round trips and lock latencies", run: BenchCommand.run),
        Subcommand(name: "ping", summary: "check that Redis answers and measure the round trip", run: PingCommand.run),
        Subcommand(
            name: "keygen", summary: "print a new encryption key as a `kid:base64` entry", run: KeygenCommand.run),
        Subcommand(
            name: "rekey", summary: "encrypt every stored refresh token again under the primary key",
            run: RekeyCommand.run),
        Subcommand(name: "health", summary: "ask a running `baton serve` whether it is ready", run: HealthCommand.run),
    ]

    static let usage = """
        usage: baton <command> [options]

        commands:
        \(subcommands.map { "  \($0.name.padding(toLength: 10, withPad: " ", startingAt: 0))\($0.summary)" }.joined(separator: "\n"))

        Run `baton <command> --help` for a command's options.
        Redis is found through --redis URL, then \(BatonDefaults.Environment.redisURL), then the config file's redis_url,
        then \(BatonDefaults.redisURL).
        --redis refuses a URL with a password: give the password in \(BatonDefaults.Environment.redisPassword) (or the config
        file's redis_password_file), or the whole URL in \(BatonDefaults.Environment.redisURL).
        """

    /// Every command's option specification, each with the help it prints (checked by a test).
    static let specifications: [CommandSpecification] = [
        ServeCommand.specification, TokenCommands.getSpecification, TokenCommands.seedSpecification,
        RefreshCommand.specification,
        RefreshCommand.configSpecification, StatusCommand.specification, WatchCommand.specification,
        LockCommand.runSpecification, LockCommand.statusSpecification, LockCommand.releaseSpecification,
        LockCommand.selftestSpecification, BenchCommand.lockSpecification, BenchCommand.tokensSpecification,
        BenchCommand.secretsSpecification,
        PingCommand.specification, KeygenCommand.specification, RekeyCommand.specification,
        HealthCommand.specification,
    ]

    static func run(_ arguments: [String]) async -> ExitCode {
        guard let name = arguments.first, !["-h", "--help", "help"].contains(name) else {
            Terminal.out(usage)
            return arguments.isEmpty ? .usage : .success
        }
        guard let subcommand = subcommands.first(where: { $0.name == name }) else {
            let nearest = subcommands.min { editDistance(name, $0.name) < editDistance(name, $1.name) }
            let hint = nearest.map { editDistance(name, $0.name) <= 2 ? " (did you mean '\($0.name)'?)" : "" } ?? ""
            Terminal.err("baton: unknown command '\(name)'\(hint)\n\n\(usage)")
            return .usage
        }
        do {
            return try await subcommand.run(Array(arguments.dropFirst()))
        } catch let error as UsageError {
            Terminal.err("baton \(name): \(error.message)\nRun `baton \(name) --help` for usage.")
            return .usage
        } catch let error as LockError {
            Terminal.err("baton \(name): \(error)")
            switch error {
            case .timedOut, .quorumNotReached, .replicationNotConfirmed: return .timedOut
            case .lost: return .lockLost
            case .invalidName: return .usage
            }
        } catch let error as RefreshError {
            Terminal.err("baton \(name): \(error)")
            switch error {
            case .needsSeed: return .tokenUnavailable
            case .needsReauthorization: return .needsReauthorization
            case .busy, .leaseLost, .replicasNotAcknowledged: return .timedOut
            case .rotatedTokenSuperseded, .secretReplaced: return .failure
            case .configMismatch: return .usage
            case .unreadableSecret(let problem):
                if case .unknownKey = problem { return .usage }
                return .failure
            case .provider(_, let failure):
                if case .configuration = failure { return .usage }
                return .providerUnavailable
            }
        } catch let error as ConfigurationError {
            Terminal.err("baton \(name): \(error)")
            return .usage
        } catch let error as HTTPListenerError {
            Terminal.err("baton \(name): \(error)")
            return .usage
        } catch let error as TokenStoreError {
            Terminal.err("baton \(name): \(error)")
            return .failure
        } catch let error as RedisError {
            Terminal.err("baton \(name): \(error)")
            if case .invalidURL = error { return .usage }
            return error.isConnectionProblem ? .redisUnavailable : .failure
        } catch {
            Terminal.err("baton \(name): \(error)")
            return .failure
        }
    }
}
