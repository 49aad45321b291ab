import BatonCommandLine
import BatonRedis
import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// A TCP proxy (`Tests/Support/redis_cut_proxy.py`) in front of a real redis-server: it can cut a
/// client connection right after the reply to a chosen command, and, frozen with SIGSTOP, hold
/// back a replication stream.
public final class RedisCutProxy: @unchecked Sendable {
    /// The port it listens on (127.0.0.1).
    public let port: Int
    private let process: ChildProcess
    private let logFile: URL

    /// `redis://127.0.0.1:PORT`.
    public var url: String { "redis://127.0.0.1:\(port)" }
    /// What it printed: `PORT n`, and `CUT` once it cut a connection.
    public var log: String { (try? String(contentsOf: logFile, encoding: .utf8)) ?? "" }

    /// Starts a proxy to 127.0.0.1:`target`; `cutAfterReplyTo` names whole arguments that, all in
    /// one request, make the proxy close that connection right after the reply (once).
    public init(target: Int, cutAfterReplyTo words: [String] = []) throws {
        let script = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("Tests/Support/redis_cut_proxy.py").path
        logFile = FileManager.default.temporaryDirectory.appendingPathComponent("cut-proxy-\(UUID().uuidString).log")
        var arguments = [script, "--target", String(target)]
        if !words.isEmpty { arguments += ["--cut-after-reply-to"] + words }
        process = try ChildProcess(executable: "/usr/bin/python3", arguments: arguments, streams: .file(logFile.path))
        let logFile = logFile
        let output = { (try? String(contentsOf: logFile, encoding: .utf8)) ?? "" }
        let deadline = Date().addingTimeInterval(10)
        var found: Int?
        while Date() < deadline, found == nil {
            found = output().split(separator: "\n").first { $0.hasPrefix("PORT ") }.flatMap { Int($0.dropFirst(5)) }
            if found == nil { usleep(20_000) }
        }
        guard let found else {
            process.terminate(grace: 1)
            throw RedisError.connectionFailed(address: "proxy", reason: "the proxy did not start: \(output())")
        }
        port = found
    }

    deinit { stop() }

    /// Sends a signal (SIGSTOP freezes what passes through, SIGKILL drops it).
    public func signal(_ signal: Int32) { process.signal(signal) }

    /// Stops the proxy.
    public func stop() {
        if process.isRunning {
            process.signal(SIGCONT)
            process.terminate(grace: 1)
        }
    }
}
