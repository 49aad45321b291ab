import BatonCommandLine
import Foundation

#if canImport(Glibc)
    import Glibc
#endif

// @unchecked: owns a `Process`, which is not Sendable; tests call it from one task at a time.
/// A throwaway `redis-server` for tests: its own free loopback port, its own temporary directory,
/// no persistence unless asked, stopped in `deinit` (so a failing test still cleans up).
///
/// ```swift
/// let server = try RedisServerProcess.start()
/// defer { server.stop() }
/// let client = try RedisClient(url: server.url)
/// ```
public final class RedisServerProcess: @unchecked Sendable {
    /// Problems starting a server, each saying what to do.
    public enum StartError: Error, CustomStringConvertible {
        case redisServerMissing
        case didNotAnswer(port: Int, log: String)

        public var description: String {
            switch self {
            case .redisServerMissing:
                return
                    "redis-server is not installed: the tests need a real Redis 7. Install it with `apt-get install -y redis-server redis-tools` (or run `make deps`)."
            case .didNotAnswer(let port, let log):
                return "redis-server on port \(port) did not answer PING within 10 s. Its log:\n\(log)"
            }
        }
    }

    /// The loopback port the server listens on (kept across restarts).
    public let port: Int
    /// The server's private directory: its data files and log.
    public let directory: URL
    /// Extra `redis-server` arguments this server was started with.
    public let extraArguments: [String]
    private let persistent: Bool
    private var process: ChildProcess?

    /// `redis://127.0.0.1:PORT/0`, plus credentials when given.
    public func url(username: String? = nil, password: String? = nil, database: Int = 0) -> String {
        var credentials = ""
        if let password { credentials = "\(username ?? ""):\(password)@" }
        return "redis://\(credentials)127.0.0.1:\(port)/\(database)"
    }

    /// `redis://127.0.0.1:PORT/0`.
    public var url: String { url() }

    /// The server's process id, while it runs.
    public var pid: Int32? { process?.pid }

    /// Starts a server and waits until it answers `PING`.
    /// - Parameters:
    ///   - persistent: keep RDB snapshots (`--save` default rules) instead of `--save ''`.
    ///   - arguments: extra arguments such as `["--requirepass", "secret"]`.
    public static func start(persistent: Bool = false, arguments: [String] = []) throws -> RedisServerProcess {
        guard let executable = locateRedisServer() else { throw StartError.redisServerMissing }
        var lastError: (any Error)?
        // A port found free can be taken by someone else before redis binds it: try a few.
        for _ in 0..<5 {
            let port = try freeLoopbackPort()
            let directory = FileManager.default.temporaryDirectory
                .appendingPathComponent("baton-redis-\(port)-\(UUID().uuidString.prefix(8))")
            try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
            let server = RedisServerProcess(
                executable: executable, port: port, directory: directory,
                persistent: persistent, extraArguments: arguments)
            do {
                try server.launch()
                return server
            } catch {
                lastError = error
                server.stop()
            }
        }
        throw lastError ?? StartError.redisServerMissing
    }

    private let executable: String

    private init(executable: String, port: Int, directory: URL, persistent: Bool, extraArguments: [String]) {
        self.executable = executable
        self.port = port
        self.directory = directory
        self.persistent = persistent
        self.extraArguments = extraArguments
    }

    deinit {
        stop()
        try? FileManager.default.removeItem(at: directory)
    }

    /// Stops the server (SIGTERM, then SIGKILL after 5 s) and waits for it to exit.
    public func stop() {
        process?.terminate()
        process = nil
    }

    /// Kills the server with SIGKILL, as a crash would: nothing is saved.
    public func kill9() {
        process?.signal(SIGKILL)
        process?.waitForExit(timeout: 5)
        process = nil
    }

    /// Stops and starts the server again on the same port with the same directory (and so the same
    /// data, when persistent).
    public func restart() throws {
        stop()
        try launch()
    }

    /// Starts the server again after ``stop()`` or ``kill9()``.
    public func startAgain() throws {
        try launch()
    }

    /// Sends a signal to the server (SIGSTOP / SIGCONT to freeze it).
    public func signal(_ signal: Int32) {
        process?.signal(signal)
    }

    /// The server's log so far.
    public var log: String {
        (try? String(contentsOf: directory.appendingPathComponent("redis.log"), encoding: .utf8)) ?? ""
    }

    private func launch() throws {
        var arguments = [
            "--port", String(port),
            "--bind", "127.0.0.1",
            "--dir", directory.path,
            "--logfile", directory.appendingPathComponent("redis.log").path,
            "--daemonize", "no",
            "--appendonly", "no",
            "--enable-debug-command", "local",
        ]
        if !persistent { arguments += ["--save", ""] }
        let process = try ChildProcess(executable: executable, arguments: arguments + extraArguments)
        self.process = process
        let deadline = Date().addingTimeInterval(10)
        while Date() < deadline {
            if !process.isRunning { break }
            if Self.answersPing(port: port) { return }
            usleep(10_000)
        }
        throw StartError.didNotAnswer(port: port, log: log)
    }

    private static func locateRedisServer() -> String? {
        let path = ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin"
        let candidates =
            path.split(separator: ":").map { "\($0)/redis-server" } + [
                "/usr/bin/redis-server", "/usr/local/bin/redis-server",
            ]
        return candidates.first { FileManager.default.isExecutableFile(atPath: $0) }
    }
}

/// Finds a TCP port on 127.0.0.1 that nothing listens on (bind to port 0, read it, release it).
public func freeLoopbackPort() throws -> Int {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    guard fd >= 0 else { throw POSIXError(.EMFILE) }
    defer { close(fd) }
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_port = 0
    address.sin_addr.s_addr = inet_addr("127.0.0.1")
    var length = socklen_t(MemoryLayout<sockaddr_in>.size)
    let bound = withUnsafeMutablePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
            bind(fd, $0, length) == 0 && getsockname(fd, $0, &length) == 0
        }
    }
    guard bound else { throw POSIXError(.EADDRINUSE) }
    return Int(UInt16(bigEndian: address.sin_port))
}

extension RedisServerProcess {
    /// Whether something on 127.0.0.1:`port` answers a RESP `PING` (with `+PONG`, or `-NOAUTH`
    /// when a password is set: either way a Redis is there).
    static func answersPing(port: Int) -> Bool {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) == 0
            }
        }
        guard connected else { return false }
        var timeout = timeval(tv_sec: 1, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        let ping = Array("PING\r\n".utf8)
        guard write(fd, ping, ping.count) == ping.count else { return false }
        var buffer = [UInt8](repeating: 0, count: 64)
        let count = read(fd, &buffer, buffer.count)
        guard count > 0 else { return false }
        let reply = String(decoding: buffer.prefix(count), as: UTF8.self)
        return reply.hasPrefix("+PONG") || reply.hasPrefix("-NOAUTH")
    }
}
