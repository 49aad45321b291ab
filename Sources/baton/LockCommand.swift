import BatonCommandLine
import BatonConfig
import BatonLock
import BatonRedis
import BatonSupport
import Foundation

/// `baton lock run|status|release|selftest`.
enum LockCommand {
    static let runUsage = "baton lock run NAME [--ttl 30s] [--wait 10s] [--replicas N] -- CMD [ARGS...]"
    static let statusUsage = "baton lock status NAME [--json]"
    static let releaseUsage = "baton lock release NAME --force"
    static let selftestUsage =
        "baton lock selftest NAME --iterations N --journal KEY [--hold 1ms] [--wait 60s] [--ttl 10s]"
    static let commonUsage = "common options: \(ConnectionOptions.locks.group.synopsis)"

    /// One help for every action (`baton lock ACTION --help` prints it too).
    static let help = CommandSpecification.helpText(
        usage: [runUsage, statusUsage, releaseUsage, selftestUsage],
        discussion: """
            \(commonUsage)

            run       runs CMD while holding the lock (like flock(1)): waits up to --wait for it,
                      renews it every ttl/3 while CMD runs, forwards SIGTERM/SIGHUP/SIGUSR1/SIGUSR2
                      (and SIGINT/SIGQUIT unless they came from the terminal) to CMD, releases it when
                      CMD exits, and exits with CMD's status. CMD gets BATON_LOCK_NAME and
                      BATON_LOCK_FENCE (the fencing token: pass it to the writes the lock protects).
                      Exit 75: not acquired in time. Exit 76: the lock was lost while CMD ran (CMD got
                      SIGTERM). Exit 127: CMD could not be started.
            status    shows the holder (host:pid), remaining TTL, last fence and queued waiters.
            release   for operators: releases the lock whoever holds it (needs --force). The holder
                      learns at its next renewal; the lock goes to the next waiter.
            selftest  acquires and releases the lock N times, appending "enter PID FENCE" and
                      "exit PID FENCE" to the Redis list KEY inside each critical section; run several
                      at once to check mutual exclusion across processes.

            Keys: PREFIX:{NAME}:lock and PREFIX:{NAME}:fence. PREFIX defaults to \(BatonDefaults.Environment.prefix), then "\(BatonDefaults.lockPrefix)".
            --replicas N: confirm the acquire on N replicas with WAIT (Sentinel setups).
            """)

    static let runSpecification = CommandSpecification(
        name: "lock run", usage: [runUsage, commonUsage],
        options: [.value("ttl", "30s"), .value("wait", "10s"), .value("replicas", "N")],
        groups: [ConnectionOptions.locks.group], positionals: 1...1, takesTrailingCommand: true, help: help)
    static let statusSpecification = CommandSpecification(
        name: "lock status", usage: [statusUsage, commonUsage], options: [.flag("json")],
        groups: [ConnectionOptions.locks.group],
        positionals: 1...1, help: help)
    static let releaseSpecification = CommandSpecification(
        name: "lock release", usage: [releaseUsage, commonUsage], options: [.flag("force")],
        groups: [ConnectionOptions.locks.group],
        positionals: 1...1, help: help)
    static let selftestSpecification = CommandSpecification(
        name: "lock selftest", usage: [selftestUsage, commonUsage],
        options: [
            .value("iterations", "N"), .value("journal", "KEY"), .value("hold", "1ms"), .value("wait", "60s"),
            .value("ttl", "10s"),
        ],
        groups: [ConnectionOptions.locks.group], positionals: 1...1, help: help)

    static func run(_ words: [String]) async throws -> ExitCode {
        guard let action = words.first, !["-h", "--help"].contains(action) else {
            Terminal.out(help)
            return words.isEmpty ? .usage : .success
        }
        let rest = Array(words.dropFirst())
        switch action {
        case "run": return try await runCommand(rest)
        case "status": return try await status(rest)
        case "release": return try await release(rest)
        case "selftest": return try await selftest(rest)
        default: throw UsageError("unknown lock action '\(action)': use run, status, release or selftest")
        }
    }

    // MARK: - run

    static func runCommand(_ words: [String]) async throws -> ExitCode {
        guard let arguments = try runSpecification.parseUnlessHelp(words, help: help) else { return .success }
        let ttl = try arguments.duration("ttl", default: .seconds(30))
        let wait = try arguments.duration("wait", default: .seconds(10))
        let replicas = try arguments.count("replicas", default: 0, allowZero: true)
        let command = arguments.trailing ?? []

        let (service, client) = try makeService(arguments)
        defer {
            service.shutDown()
            client.shutDown()
        }
        let lock = try service.lock(
            arguments.positionals[0], options: .init(ttl: ttl, replicaAcknowledgements: replicas))
        let lease: LockLease
        do {
            lease = try await lock.acquire(timeout: wait)
        } catch let error as LockError {
            Terminal.err("baton lock run: \(error)")
            return .timedOut
        }

        let child: ChildProcess
        do {
            child = try ChildProcess(
                executable: command[0], arguments: Array(command.dropFirst()), streams: .inherit,
                environment: [
                    BatonDefaults.Environment.lockName: lock.name,
                    BatonDefaults.Environment.lockFence: String(lease.fence.value),
                ])
        } catch {
            _ = try? await lease.release()
            Terminal.err("baton lock run: cannot run \(error)")
            return .commandNotFound
        }
        let forwarding = SignalForwarder(to: child)
        defer { forwarding.stop() }

        let lossWatcher = Task {
            await lease.waitUntilLost()
            guard !Task.isCancelled else { return }
            Terminal.err(
                "baton lock run: \(lease.lossError.map(String.init(describing:)) ?? "lost the lock"); sending SIGTERM to the command"
            )
            child.signal(SIGTERM)
            try? await Task.sleep(for: .seconds(10))
            child.signal(SIGKILL)
        }
        let status = await waitForExit(child)
        lossWatcher.cancel()
        let lost = lease.isLost
        _ = try? await lease.release()
        return lost ? .lockLost : ExitCode(rawValue: status)
    }

    /// Blocks a plain thread (never a cooperative one) in `waitpid`.
    static func waitForExit(_ child: ChildProcess) async -> Int32 {
        await runOnDedicatedThread(named: "baton-wait-child") { child.waitUntilExit() }
    }

    // MARK: - status, release

    static func status(_ words: [String]) async throws -> ExitCode {
        guard let arguments = try statusSpecification.parseUnlessHelp(words, help: help) else { return .success }
        let (service, client) = try makeService(arguments)
        defer {
            service.shutDown()
            client.shutDown()
        }
        let status = try await service.lock(arguments.positionals[0]).status()
        if arguments.has("json") {
            let object: [String: Any] = [
                "name": status.name,
                "held": status.holder != nil,
                "holder": status.holderLabel ?? NSNull(),
                "ttl_ms": status.remainingTTL.map { Int($0.milliseconds) } ?? NSNull(),
                "fence": status.fence.map { Int($0.value) } ?? NSNull(),
                "waiters": status.waiters,
            ]
            let data = try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])
            Terminal.out(String(decoding: data, as: UTF8.self))
        } else if let holder = status.holderLabel {
            let ttl = status.remainingTTL.map { $0.shortDescription } ?? "no TTL"
            Terminal.out(
                "lock \(status.name): held by \(holder), \(ttl) left, fence \(status.fence?.value ?? 0), \(status.waiters) waiting"
            )
        } else {
            Terminal.out(
                "lock \(status.name): free (last fence \(status.fence?.value ?? 0), \(status.waiters) waiting)")
        }
        return .success
    }

    static func release(_ words: [String]) async throws -> ExitCode {
        guard let arguments = try releaseSpecification.parseUnlessHelp(words, help: help) else { return .success }
        guard arguments.has("force") else {
            throw UsageError(
                "releasing a lock you do not hold needs --force (the holder keeps working until its next renewal)")
        }
        let (service, client) = try makeService(arguments)
        defer {
            service.shutDown()
            client.shutDown()
        }
        let lock = try service.lock(arguments.positionals[0])
        let fence = try await lock.status().fence
        guard let holder = try await lock.forceRelease() else {
            Terminal.out("lock \(lock.name) was not held")
            return .success
        }
        Terminal.err(
            """
            warning: forcibly released lock \(lock.name) held by \(holder.split(separator: ":").dropLast().joined(separator: ":")) (fence \(fence?.value ?? 0)).
            The holder learns it lost the lock at its next renewal; until then it may still be working.
            Writes fenced with its token are rejected once a newer holder has written.
            """)
        Terminal.out("released lock \(lock.name)")
        return .success
    }

    // MARK: - selftest

    static func selftest(_ words: [String]) async throws -> ExitCode {
        guard let arguments = try selftestSpecification.parseUnlessHelp(words, help: help) else { return .success }
        let iterations = try arguments.count("iterations", default: 100)
        guard let journal = arguments.value("journal") else {
            throw UsageError("--journal KEY is required (a Redis list to append to)")
        }
        let hold = try arguments.value("hold").map { _ in try arguments.duration("hold", default: .zero) }
        let wait = try arguments.duration("wait", default: .seconds(60))
        let ttl = try arguments.duration("ttl", default: .seconds(10))
        let (service, client) = try makeService(arguments)
        defer {
            service.shutDown()
            client.shutDown()
        }
        let lock = try service.lock(arguments.positionals[0], options: .init(ttl: ttl))
        let pid = ProcessInfo.processInfo.processIdentifier
        for _ in 0..<iterations {
            let lease = try await lock.acquire(timeout: wait)
            try await client.send("RPUSH", journal, "enter \(pid) \(lease.fence.value)")
            if let hold { try await Task.sleep(for: hold) }
            try await client.send("RPUSH", journal, "exit \(pid) \(lease.fence.value)")
            guard try await lease.release() else {
                Terminal.err(
                    "baton lock selftest: the lock was lost inside a critical section (fence \(lease.fence.value))")
                return .lockLost
            }
        }
        return .success
    }

    // MARK: - helpers

    static func makeService(_ arguments: ParsedArguments) throws -> (LockService, RedisClient) {
        let connection = try ConnectionOptions.locks.resolve(arguments)
        let client = try RedisClient(url: connection.redisURL, options: .init(poolSize: 4))
        return (try LockService(client: client, prefix: connection.prefix ?? BatonDefaults.lockPrefix), client)
    }
}
