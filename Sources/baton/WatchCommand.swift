import BatonCommandLine
import BatonRedis
import BatonSupport
import BatonTokens
import Foundation

/// `baton watch`: a live feed of token changes for operators.
enum WatchCommand {
    static let specification = CommandSpecification(
        name: "watch", usage: ["baton watch [SVC...] \(ConnectionOptions.tokens.group.synopsis)"],
        groups: [ConnectionOptions.tokens.group], positionals: 0...1000,
        discussion: """
            Prints one line per record change (every refresh, failure, seed) as it happens: time,
            service, version, status, time to expiry, who refreshed it, last error. Never a token.
            Watches every service when none is named. Runs until Ctrl-C.
            """)

    static func run(_ words: [String]) async throws -> ExitCode {
        guard let arguments = try specification.parseUnlessHelp(words) else { return .success }
        let context = try CommandContext(arguments)
        defer { context.shutDown() }
        let services = arguments.positionals
        for service in services { _ = try context.store.keys(service) }
        // One listener thread for the whole feed; messages reach this task through a mailbox.
        let messages = Mailbox<PubSubMessage>(collapsing: { _, _ in false })
        let watching = LockedBox(false)  // a failure before the first subscription is thrown, not reported
        let listener = ReconnectingLoop(
            name: "baton-watch", endpoint: context.client.endpoint, options: context.client.options.connection,
            channels: try services.map { try context.store.keys($0).changedChannel },
            patterns: services.isEmpty ? [context.prefix + ":*:changed"] : [],
            onEvent: { event in if case .message(let message) = event { messages.post(message) } },
            onError: { error in
                if watching.withLockedValue({ $0 }) { Terminal.err("baton watch: \(error); reconnecting") }
            }
        )
        listener.start()
        defer { listener.stop() }
        try await listener.waitUntilConnected()
        watching.withLockedValue { $0 = true }
        Terminal.out(
            "watching \(services.isEmpty ? "every service" : services.joined(separator: ", ")) under prefix '\(context.prefix)' (Ctrl-C to stop)"
        )
        let stop = StopFlag()
        let handlers = SignalHandlers()
        handlers.on([SIGINT, SIGTERM]) { stop.set() }
        defer { handlers.cancel() }
        let head = context.prefix + ":{"
        while !stop.isSet {
            guard case .event(let message) = await messages.next(timeout: .milliseconds(500)),
                message.channel.hasPrefix(head), message.channel.hasSuffix("}:changed")
            else { continue }
            let service = String(message.channel.dropFirst(head.count).dropLast("}:changed".count))
            guard let record = try await context.store.record(service) else {
                Terminal.out("\(DisplayFormat.clockTime())  \(service)  v\(message.text)  seeded (no access token yet)")
                continue
            }
            let now = try await context.store.now()
            let error = record.lastError.map { "  last error \($0.code): \($0.description)" } ?? ""
            Terminal.out(
                "\(DisplayFormat.clockTime())  \(service)  v\(record.version)  \(record.status.rawValue)  expires in \(DisplayFormat.age(milliseconds: max(0, record.expiresAt - now)))  by \(record.refreshedBy)\(error)"
            )
        }
        return .success
    }
}
