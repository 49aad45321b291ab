import BatonSupport
import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// A program that could not be started.
public struct SpawnError: Error, CustomStringConvertible {
    /// The program.
    public let executable: String
    /// The `errno` value `posix_spawn` returned.
    public let code: Int32

    public var description: String {
        let reason = String(cString: strerror(code))
        return code == ENOENT ? "\(executable): \(reason) (is it installed and on PATH?)" : "\(executable): \(reason)"
    }
}

/// A child process started with `posix_spawn` and reaped with `waitpid`: `baton lock run`'s
/// command, and the servers and `baton` processes that tests start.
///
/// Foundation's `Process` learns of a child's exit through the run loop, which async code does not
/// spin, so its `isRunning` can lag by seconds. This type asks the kernel directly. The child
/// starts with an empty signal mask and default handlers, whatever the spawning thread had.
public final class ChildProcess: Sendable {
    /// The child's process id.
    public let pid: pid_t
    /// The raw `waitpid` status once the child has been reaped.
    private let exitStatus = LockedBox<Int32?>(nil)

    /// Where the child's standard streams go.
    public enum Streams: Sendable {
        /// Standard input, output and error are this process's own.
        case inherit
        /// Standard input from /dev/null; output and error appended to a file (or discarded when `nil`).
        case file(String?)
    }

    /// Starts `executable` (searched on `PATH` when it has no slash) with `arguments`.
    /// - Parameters:
    ///   - streams: where standard input, output and error go; default: output discarded.
    ///   - environment: variables merged over this process's environment.
    /// - Throws: ``SpawnError`` when the program cannot be started (for example `ENOENT`).
    public init(
        executable: String, arguments: [String], streams: Streams = .file(nil), environment: [String: String] = [:]
    ) throws {
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        if case .file(let outputPath) = streams {
            posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
            posix_spawn_file_actions_addopen(
                &actions, 1, outputPath ?? "/dev/null", O_WRONLY | O_CREAT | O_APPEND, 0o644)
            posix_spawn_file_actions_adddup2(&actions, 1, 2)
        }

        // Threads of Swift's concurrency pool block signals, and a spawned child inherits the
        // mask: without this, a server started from an async test ignores SIGTERM.
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        var noSignals = sigset_t()
        sigemptyset(&noSignals)
        posix_spawnattr_setsigmask(&attributes, &noSignals)
        var defaultSignals = sigset_t()
        sigemptyset(&defaultSignals)
        for signal in [SIGTERM, SIGINT, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2, SIGPIPE, SIGCHLD] {
            sigaddset(&defaultSignals, signal)
        }
        posix_spawnattr_setsigdefault(&attributes, &defaultSignals)
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF))

        var merged = ProcessInfo.processInfo.environment
        for (name, value) in environment { merged[name] = value }
        let argv = ([executable] + arguments).map { strdup($0) } + [nil]
        let envp = merged.map { strdup("\($0.key)=\($0.value)") } + [nil]
        defer {
            argv.forEach { free($0) }
            envp.forEach { free($0) }
        }
        var pid: pid_t = 0
        let status = posix_spawnp(&pid, executable, &actions, &attributes, argv, envp)
        guard status == 0 else { throw SpawnError(executable: executable, code: status) }
        self.pid = pid
    }

    deinit {
        if isRunning {
            kill(pid, SIGKILL)
            _ = waitForExit(timeout: 5)
        }
    }

    /// Whether the child has not exited yet (reaping it if it has).
    public var isRunning: Bool {
        exitStatus.withLockedValue { exitStatus in
            if exitStatus != nil { return false }
            var status: Int32 = 0
            if waitpid(pid, &status, WNOHANG) == pid {
                exitStatus = status
                return false
            }
            return true
        }
    }

    /// The exit code when the child exited normally, or 128 + signal when a signal killed it.
    public var terminationStatus: Int32? {
        _ = isRunning
        guard let status = exitStatus.withLockedValue({ $0 }) else { return nil }
        let signal = status & 0x7f
        return signal == 0 ? (status >> 8) & 0xff : 128 + signal
    }

    /// Sends a signal.
    public func signal(_ signal: Int32) {
        if isRunning { kill(pid, signal) }
    }

    /// Blocks the calling thread until the child exits; returns ``terminationStatus``.
    @discardableResult
    public func waitUntilExit() -> Int32 {
        var status: Int32 = 0
        var reaped: pid_t
        repeat { reaped = waitpid(pid, &status, 0) } while reaped < 0 && errno == EINTR
        // If another thread reaped it first (ECHILD), its status is already recorded.
        exitStatus.withLockedValue { if reaped == pid && $0 == nil { $0 = status } }
        return terminationStatus ?? 1
    }

    /// Waits until the child exits or `timeout` seconds pass.
    /// - Returns: whether it exited.
    @discardableResult
    public func waitForExit(timeout: Double) -> Bool {
        let deadline = Date().addingTimeInterval(timeout)
        while isRunning {
            if Date() >= deadline { return false }
            usleep(5_000)
        }
        return true
    }

    /// SIGTERM, then SIGKILL if it has not exited after `grace` seconds; waits for the exit.
    public func terminate(grace: Double = 5) {
        signal(SIGTERM)
        if !waitForExit(timeout: grace) {
            signal(SIGKILL)
            waitForExit(timeout: 5)
        }
    }
}
