import BatonRedis
import Foundation

/// Replication helpers for tests that need a master and its replicas (`WAIT`, acknowledgements).
extension RedisServerProcess {
    /// Starts a replica of `master` (`--replicaof 127.0.0.1 PORT`). Start the master with
    /// ``replicationFriendlyArguments`` so the first sync does not wait 5 s for more replicas.
    public static func startReplica(of master: RedisServerProcess, arguments: [String] = []) throws
        -> RedisServerProcess
    {
        try start(arguments: ["--replicaof", "127.0.0.1", String(master.port)] + arguments)
    }

    /// Master settings for tests: a diskless first sync that starts at once.
    public static let replicationFriendlyArguments = ["--repl-diskless-sync-delay", "0"]

    /// How many replicas this master streams to (`state=online` in `INFO replication`).
    public func onlineReplicas() throws -> Int {
        let connection = try RedisConnection(url: url)
        defer { connection.close() }
        let info = try connection.send(RedisCommand("INFO", "replication")).string ?? ""
        return info.split(whereSeparator: \.isNewline).filter { $0.hasPrefix("slave") && $0.contains("state=online") }
            .count
    }

    /// How many times this server ran `command` since it started (`INFO commandstats`), e.g.
    /// `calls(of: "wait")`.
    public func calls(of command: String) throws -> Int {
        let connection = try RedisConnection(url: url)
        defer { connection.close() }
        let info = try connection.send(RedisCommand("INFO", "commandstats")).string ?? ""
        let prefix = "cmdstat_\(command.lowercased()):calls="
        guard let line = info.split(whereSeparator: \.isNewline).first(where: { $0.hasPrefix(prefix) }) else {
            return 0
        }
        return Int(line.dropFirst(prefix.count).prefix { $0.isNumber }) ?? 0
    }
}
