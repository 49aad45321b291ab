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

    /// How many replicas this master streams to (`slaveN:...,state=online` in `INFO replication`).
    public func onlineReplicas() throws -> Int {
        try RedisCLI.info(port: port, section: "replication")
            .filter { $0.key.hasPrefix("slave") && $0.value.contains("state=online") }.count
    }

    /// How many times this server ran `command` since it started (`calls=` of `cmdstat_<command>`
    /// in `INFO commandstats`; 0 when never), e.g. `calls(of: "wait")`.
    public func calls(of command: String) throws -> Int {
        let stats = try RedisCLI.info(port: port, section: "commandstats")["cmdstat_\(command.lowercased())"] ?? ""
        let calls = stats.split(separator: ",").first { $0.hasPrefix("calls=") }?.dropFirst("calls=".count)
        return calls.flatMap { Int($0) } ?? 0
    }
}
