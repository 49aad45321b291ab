import BatonCommandLine
import BatonConfig
import BatonTokens
import Foundation

/// `baton refresh` and `baton config check`.
enum RefreshCommand {
    static let specification = CommandSpecification(
        name: "refresh", usage: ["baton refresh SVC [--force] \(ConnectionOptions.coordinator.group.synopsis)"],
        options: [.flag("force")], groups: [ConnectionOptions.coordinator.group], positionals: 1...1,
        discussion: """
            Runs the refresh protocol for SVC in this process and prints the resulting record as JSON.
            Without --force it returns the stored record when it is still fresh. Any number of these
            may run at once on any hosts: the service lock makes sure only one calls the provider, and
            the others return its result.
            Exit codes: 3 needs re-authorisation, 4 provider unavailable, 5 Redis unavailable,
            6 no refresh token stored, 75 another refresh held the lock too long.
            """)

    static let configSpecification = CommandSpecification(
        name: "config check", usage: ["baton config check FILE"], positionals: 1...1,
        discussion: """
            Validates a configuration file (JSON) and lists every problem with its path; exits 2 if
            there is any. Secrets named by client_secret_env / client_secret_file must be readable.
            Warnings (encryption "none", a password inline in redis_url) go to standard error as
            "warning: ..."; they do not change the exit status.
            """)

    static func refresh(_ words: [String]) async throws -> ExitCode {
        guard let arguments = try specification.parseUnlessHelp(words) else { return .success }
        let context = try CommandContext(arguments, options: .coordinator)
        defer { context.shutDown() }
        let service = try context.service(arguments.positionals[0])
        let locks = try context.makeLocks()
        defer { locks.shutDown() }
        let spool = RotatedTokenSpool(
            stateDirectory: context.configuration!.resolvedStateDirectory(), encryption: context.store.sealer.encryption
        )
        let refresher = TokenRefresher(
            store: context.store, locks: locks, replica: CommandContext.processLabel, spool: spool,
            acknowledgement: ReplicaAcknowledgement(context.configuration!),
            onPersistRetry: { name, error in
                Terminal.err(
                    "baton refresh: a new refresh token for '\(name)' is not stored yet; retrying until it is (\(error))"
                )
            },
            onReplicaAcknowledgement: { Terminal.err("baton refresh: \($0)") })
        let replayed = try await refresher.replaySpool()
        if replayed.stored > 0 {
            Terminal.err(
                "baton refresh: stored \(replayed.stored) rotated refresh token(s) left in \(spool.directory) by a process that stopped early"
            )
        }
        if replayed.awaitingReplicas > 0 {
            Terminal.err(
                "baton refresh: a rotated refresh token left in \(spool.directory) is on the Redis master but not yet on persist_replicas replicas; it stays there for the next replay"
            )
        }
        let record = try await refresher.refresh(
            service.name, settings: RefreshSettings(service, configuration: context.configuration!),
            provider: OAuthTokenProvider(service: service),
            request: arguments.has("force") ? .forced(seenVersion: nil) : .fresh)
        Terminal.out(String(decoding: try record.jsonBytes(), as: UTF8.self))
        return .success
    }

    static func config(_ words: [String]) async throws -> ExitCode {
        guard words.first == "check" else {
            if words.first.map({ ["-h", "--help"].contains($0) }) == true {
                Terminal.out(configSpecification.help)
                return .success
            }
            throw UsageError("use `baton config check FILE`")
        }
        guard let arguments = try configSpecification.parseUnlessHelp(Array(words.dropFirst())) else { return .success }
        let configuration = try BatonConfiguration.load(path: arguments.positionals[0])
        for warning in configuration.warnings { Terminal.err("warning: \(warning)") }
        let names = configuration.services.map(\.name)
        let shown =
            names.prefix(10).joined(separator: ", ") + (names.count > 10 ? ", and \(names.count - 10) more" : "")
        Terminal.out(
            "\(arguments.positionals[0]): OK: \(names.count) service\(names.count == 1 ? "" : "s") (\(shown)), prefix '\(configuration.prefix)'"
        )
        return .success
    }
}
