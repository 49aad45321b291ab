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
///
/// With `tls:` it listens on TLS only (see ``TLSSettings``, ``tlsURL(_:username:password:database:)``).
/// ``RedisSentinelGroup`` and ``RedisClusterProcess`` build on it: a Sentinel is a
/// `redis-server --sentinel` of this type.
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

    /// The loopback port the server listens on (kept across restarts): its TLS port when started
    /// with `tls` (it then has no plain TCP port).
    public let port: Int
    /// The server's private directory: its data files and log.
    public let directory: URL
    /// Extra `redis-server` arguments this server was started with.
    public let extraArguments: [String]
    /// Its TLS settings; `nil` for plain TCP.
    public let tls: TLSSettings?
    /// The configuration file loaded before the arguments (`redis.conf`, or `sentinel.conf` for a
    /// Sentinel, which rewrites it), when there is one.
    public let configurationFile: URL?
    /// The certificates behind ``tls``.
    let certificates: TestCertificates?
    private let persistent: Bool
    private let mode: Mode
    private var process: ChildProcess?

    /// What the process runs as.
    enum Mode {
        /// A data node.
        case server
        /// `redis-server sentinel.conf --sentinel`: its configuration file is required, and
        /// rewritten by Sentinel.
        case sentinel
    }

    /// `redis://127.0.0.1:PORT/0`, plus credentials when given. For a TLS server:
    /// `rediss://127.0.0.1:PORT/0?tls_ca_file=...`, the parameters that reach it (see
    /// ``tlsURL(_:username:password:database:)``).
    public func url(username: String? = nil, password: String? = nil, database: Int = 0) -> String {
        if tls != nil { return tlsURL(username: username, password: password, database: database) }
        return "redis://\(userInfo(username: username, password: password))127.0.0.1:\(port)/\(database)"
    }

    /// `redis://127.0.0.1:PORT/0` (`rediss://...` for a TLS server).
    public var url: String { url() }

    /// The server's process id, while it runs.
    public var pid: Int32? { process?.pid }

    /// Starts a server and waits until it answers `PING` (over TLS with `tls`, using `redis-cli`).
    /// - Parameters:
    ///   - persistent: keep RDB snapshots (`--save` default rules) instead of `--save ''`.
    ///   - arguments: extra arguments such as `["--maxmemory", "10mb"]`.
    ///   - configuration: lines of a `redis.conf` written in the server's directory and loaded
    ///     before the arguments, such as `["requirepass secret"]`: put secrets here rather than in
    ///     `arguments`, which any process can read (default: no file).
    ///   - tls: listen on TLS only, with these certificates (default: plain TCP).
    public static func start(
        persistent: Bool = false, arguments: [String] = [], configuration: [String] = [], tls: TLSSettings? = nil
    ) throws -> RedisServerProcess {
        try start(persistent: persistent, arguments: arguments, configuration: configuration, tls: tls, mode: .server)
    }

    /// ``start(persistent:arguments:configuration:tls:)`` for the topologies built on this type.
    /// - Parameters:
    ///   - mode: a data node or a Sentinel.
    ///   - clusterBus: choose a port P such that P + 10000 (a cluster node's bus port) is free too.
    static func start(
        persistent: Bool = false, arguments: [String] = [], configuration: [String] = [], tls: TLSSettings? = nil,
        mode: Mode, clusterBus: Bool = false
    ) throws -> RedisServerProcess {
        guard let executable = try? InstalledProgram.path("redis-server") else { throw StartError.redisServerMissing }
        let certificates = tls == nil ? nil : try TestCertificates.shared()
        var lastError: (any Error)?
        // A port found free can be taken by someone else before redis binds it: try a few.
        for _ in 0..<5 {
            let port = clusterBus ? try freeLoopbackPort(alsoFreeAt: 10_000) : try freeLoopbackPort()
            let directory = FileManager.default.temporaryDirectory
                .appendingPathComponent("baton-redis-\(port)-\(UUID().uuidString.prefix(8))")
            try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
            var configurationFile: URL?
            if mode == .sentinel || !configuration.isEmpty {
                let file = directory.appendingPathComponent(mode == .sentinel ? "sentinel.conf" : "redis.conf")
                try configuration.map { $0 + "\n" }.joined().write(to: file, atomically: true, encoding: .utf8)
                configurationFile = file
            }
            let server = RedisServerProcess(
                executable: executable, port: port, directory: directory, persistent: persistent,
                extraArguments: arguments, configurationFile: configurationFile, tls: tls, certificates: certificates,
                mode: mode)
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

    private init(
        executable: String, port: Int, directory: URL, persistent: Bool, extraArguments: [String],
        configurationFile: URL?, tls: TLSSettings?, certificates: TestCertificates?, mode: Mode
    ) {
        self.executable = executable
        self.port = port
        self.directory = directory
        self.persistent = persistent
        self.extraArguments = extraArguments
        self.configurationFile = configurationFile
        self.tls = tls
        self.certificates = certificates
        self.mode = mode
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

    /// Whether the process is running (it may not answer yet).
    public var isRunning: Bool { process?.isRunning ?? false }

    private func launch() throws {
        var arguments: [String] = []
        if let configurationFile { arguments.append(configurationFile.path) }
        if mode == .sentinel { arguments.append("--sentinel") }
        if let tls, let certificates {
            arguments += ["--port", "0", "--tls-port", String(port)] + tls.serverArguments(certificates)
        } else {
            arguments += ["--port", String(port)]
        }
        arguments += [
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
            if answers() { return }
            usleep(10_000)
        }
        throw StartError.didNotAnswer(port: port, log: log)
    }

    /// Whether the server answers `PING`: through a plain socket, or with `redis-cli` over TLS
    /// (Baton's client does not speak TLS).
    private func answers() -> Bool {
        guard let cliTLS else { return Self.answersPing(port: port) }
        guard let result = try? RedisCLI.run(port: port, ["PING"], tls: cliTLS, timeout: 5) else { return false }
        return result.output.hasPrefix("PONG") || result.output.hasPrefix("NOAUTH")
    }
}

extension RedisServerProcess {
    /// Whether something on 127.0.0.1:`port` answers a RESP `PING` (with `+PONG`, or `-NOAUTH`
    /// when a password is set: either way a Redis is there).
    static func answersPing(port: Int) -> Bool {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        var address = loopbackAddress(port: port)
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
