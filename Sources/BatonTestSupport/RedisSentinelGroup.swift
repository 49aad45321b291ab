import Foundation

#if canImport(Glibc)
    import Glibc
#endif

// @unchecked: remembers the last killed master; tests call it from one task at a time.
/// A real Sentinel deployment for tests: one master, two replicas (`--replicaof`) and three
/// Sentinels (quorum 2), each a ``RedisServerProcess`` on its own loopback port and directory,
/// all stopped in `deinit`.
///
/// ``start(masterName:dataPassword:sentinelPassword:dataArguments:dataConfiguration:downAfterMilliseconds:failoverTimeoutMilliseconds:timeout:)``
/// returns once a failover would work: both replicas are in sync and every Sentinel knows both
/// replicas and the two other Sentinels.
///
/// ```swift
/// let group = try await RedisSentinelGroup.start(masterName: "baton")
/// let client = ... group.url ...                // redis-sentinel://127.0.0.1:S1,...#baton
/// let old = try group.killMaster()
/// let new = try await group.waitForFailover(awayFrom: old)
/// try await group.restartOldMaster()             // back as a replica of `new`
/// ```
///
/// Sentinel's own timers set the pace: a failover takes a few seconds after the master dies, and
/// turning a restarted master into a replica 10 to 20 seconds.
public final class RedisSentinelGroup: @unchecked Sendable {
    /// The name the Sentinels monitor the master under.
    public let masterName: String
    /// The data nodes: the first started as the master, the others as its replicas. Roles change
    /// with failovers: ask ``currentMasterPort(askingSentinel:)``.
    public let dataNodes: [RedisServerProcess]
    /// The three Sentinels.
    public let sentinels: [RedisServerProcess]
    /// The data nodes' password (`requirepass` and `masterauth`), if any.
    public let dataPassword: String?
    /// The Sentinels' password (`requirepass`), if any.
    public let sentinelPassword: String?
    /// The port of the master ``killMaster()`` killed, until ``restartOldMaster(timeout:)``.
    public private(set) var killedMasterPort: Int?

    /// The environment variable Baton reads the Sentinels' password from.
    public static let sentinelPasswordVariable = "BATON_SENTINEL_PASSWORD"

    /// The Sentinels' quorum: how many must agree that the master is down.
    public static let quorum = 2

    private init(
        masterName: String, dataNodes: [RedisServerProcess], sentinels: [RedisServerProcess], dataPassword: String?,
        sentinelPassword: String?
    ) {
        self.masterName = masterName
        self.dataNodes = dataNodes
        self.sentinels = sentinels
        self.dataPassword = dataPassword
        self.sentinelPassword = sentinelPassword
    }

    deinit {
        stop()
    }

    // MARK: - Starting and stopping

    /// Starts the master, its two replicas and three Sentinels, and waits until the group is
    /// ready for a failover (see ``waitUntilReady(timeout:)``).
    /// - Parameters:
    ///   - masterName: the name Sentinels monitor the master under (default `baton-master`).
    ///   - dataPassword: `requirepass` and `masterauth` of the data nodes (written to their
    ///     configuration files, never to arguments), and `sentinel auth-pass` (default: none).
    ///   - sentinelPassword: `requirepass` of the Sentinels (default: none). Baton reads it from
    ///     ``sentinelPasswordVariable``: see ``sentinelEnvironment``.
    ///   - dataArguments: extra `redis-server` arguments for every data node, such as
    ///     `["--min-replicas-to-write", "1"]`.
    ///   - dataConfiguration: extra configuration lines for every data node.
    ///   - downAfterMilliseconds: `sentinel down-after-milliseconds` (default 1000).
    ///   - failoverTimeoutMilliseconds: `sentinel failover-timeout` (default 5000); a failed
    ///     failover attempt is retried after twice this.
    ///   - timeout: how long the group may take to become ready (default 60 s).
    /// - Throws: ``RedisServerProcess/StartError`` when a process does not start, ``TopologyError``
    ///   (with every log) when the group does not become ready in time.
    public static func start(
        masterName: String = "baton-master", dataPassword: String? = nil, sentinelPassword: String? = nil,
        dataArguments: [String] = [], dataConfiguration: [String] = [], downAfterMilliseconds: Int = 1000,
        failoverTimeoutMilliseconds: Int = 5000, timeout: Duration = .seconds(60)
    ) async throws -> RedisSentinelGroup {
        var configuration = dataConfiguration
        if let dataPassword {
            configuration += ["requirepass \(configQuoted(dataPassword))", "masterauth \(configQuoted(dataPassword))"]
        }
        // A replica's first sync must not wait 5 s for other replicas to join a diskless transfer.
        let arguments = ["--repl-diskless-sync-delay", "0"] + dataArguments
        let master = try RedisServerProcess.start(arguments: arguments, configuration: configuration, mode: .server)
        var dataNodes = [master]
        for _ in 0..<2 {
            dataNodes.append(
                try RedisServerProcess.start(
                    arguments: arguments + ["--replicaof", "127.0.0.1", String(master.port)],
                    configuration: configuration, mode: .server))
        }
        var sentinelConfiguration = [
            "sentinel resolve-hostnames no",
            "sentinel monitor \(masterName) 127.0.0.1 \(master.port) \(quorum)",
            "sentinel down-after-milliseconds \(masterName) \(downAfterMilliseconds)",
            "sentinel failover-timeout \(masterName) \(failoverTimeoutMilliseconds)",
            "sentinel parallel-syncs \(masterName) 1",
        ]
        if let dataPassword {
            sentinelConfiguration.append("sentinel auth-pass \(masterName) \(configQuoted(dataPassword))")
        }
        if let sentinelPassword {
            // Sentinels talk to each other with `sentinel-pass`.
            sentinelConfiguration += [
                "requirepass \(configQuoted(sentinelPassword))",
                "sentinel sentinel-pass \(configQuoted(sentinelPassword))",
            ]
        }
        var sentinels: [RedisServerProcess] = []
        do {
            for _ in 0..<3 {
                sentinels.append(try RedisServerProcess.start(configuration: sentinelConfiguration, mode: .sentinel))
            }
        } catch {
            (dataNodes + sentinels).forEach { $0.kill9() }
            throw error
        }
        let group = RedisSentinelGroup(
            masterName: masterName, dataNodes: dataNodes, sentinels: sentinels, dataPassword: dataPassword,
            sentinelPassword: sentinelPassword)
        try await group.waitUntilReady(timeout: timeout)
        return group
    }

    /// Kills every process (SIGKILL: the data is throwaway). `deinit` does it too.
    public func stop() {
        (sentinels + dataNodes).forEach { $0.kill9() }
    }

    // MARK: - Addresses

    /// The Sentinels' ports, in order.
    public var sentinelPorts: [Int] { sentinels.map(\.port) }

    /// The data nodes' ports, the first master first.
    public var dataPorts: [Int] { dataNodes.map(\.port) }

    /// `redis-sentinel://127.0.0.1:S1,127.0.0.1:S2,127.0.0.1:S3#MASTER-NAME`.
    public var url: String { url() }

    /// Baton's Sentinel URL: `redis-sentinel://[CREDENTIALS@]127.0.0.1:S1,127.0.0.1:S2,127.0.0.1:S3[/DB]#NAME`.
    /// The credentials are the master's (percent-encoded); the Sentinels' password is not in the
    /// URL (see ``sentinelEnvironment``).
    /// - Parameters:
    ///   - username: the master's ACL user, with `password`.
    ///   - password: the master's password (default: none).
    ///   - database: the database number (default: none in the URL).
    public func url(username: String? = nil, password: String? = nil, database: Int? = nil) -> String {
        let hosts = sentinelPorts.map { "127.0.0.1:\($0)" }.joined(separator: ",")
        let path = database.map { "/\($0)" } ?? ""
        return "redis-sentinel://\(userInfo(username: username, password: password))\(hosts)\(path)#"
            + percentEncoded(masterName)
    }

    /// `BATON_SENTINEL_PASSWORD` set to ``sentinelPassword`` (empty without one): the
    /// environment a Baton process needs.
    public var sentinelEnvironment: [String: String] {
        sentinelPassword.map { [Self.sentinelPasswordVariable: $0] } ?? [:]
    }

    /// The data node on `port`, if it is one of this group's.
    public func dataNode(port: Int) -> RedisServerProcess? {
        dataNodes.first { $0.port == port }
    }

    // MARK: - Asking the group

    /// The master's port according to one Sentinel (`SENTINEL get-master-addr-by-name`).
    /// - Parameter index: which Sentinel to ask; `nil` (default) for the first running one.
    /// - Throws: ``TopologyError`` when no Sentinel runs, or it does not know the master.
    public func currentMasterPort(askingSentinel index: Int? = nil) throws -> Int {
        guard let sentinel = index.map({ sentinels[$0] }) ?? sentinels.first(where: \.isRunning) else {
            throw TopologyError("no Sentinel of the group is running: start one with startSentinel(_:)")
        }
        return try masterPort(accordingTo: sentinel)
    }

    /// `INFO replication` of the data node on `port` (`role`, `master_port`, `master_link_status`...).
    /// - Throws: ``TopologyError`` when the node does not answer.
    public func replicationInfo(port: Int) throws -> [String: String] {
        try RedisCLI.info(port: port, section: "replication", password: dataPassword)
    }

    /// Every process's log, for a failure message.
    public func logs() -> [(name: String, log: String)] {
        dataNodes.map { ("redis-server :\($0.port)", $0.log) }
            + sentinels.map { ("redis-sentinel :\($0.port)", $0.log) }
    }

    // MARK: - Failover

    /// Kills the current master with SIGKILL, as a crash would.
    /// - Returns: its port (pass it to ``waitForFailover(awayFrom:timeout:)``).
    /// - Throws: ``TopologyError`` when no Sentinel knows the master.
    @discardableResult
    public func killMaster() throws -> Int {
        let port = try currentMasterPort()
        guard let master = dataNode(port: port) else {
            throw TopologyError("the Sentinels name 127.0.0.1:\(port) as the master, which is not a node of this group")
        }
        master.kill9()
        killedMasterPort = port
        return port
    }

    /// Waits until every running Sentinel names the same new master, other than `oldPort`, and
    /// that node reports `role:master`.
    /// - Parameter timeout: default 60 s (Sentinel may need a second attempt, twice the
    ///   failover timeout later, or sit out 30 s in TILT mode on a stalled machine).
    /// - Returns: the new master's port.
    /// - Throws: ``TopologyError`` with every log when it does not happen in time.
    @discardableResult
    public func waitForFailover(awayFrom oldPort: Int, timeout: Duration = .seconds(60)) async throws -> Int {
        try await waitUntil("a failover away from the master on port \(oldPort)", timeout: timeout, logs: logs) {
            let port = try agreedMasterPort()
            guard port != oldPort else { throw NotYet("the Sentinels still name port \(oldPort)") }
            let role = try replicationInfo(port: port)["role"]
            guard role == "master" else {
                throw NotYet("the Sentinels name port \(port), which reports role:\(role ?? "?")")
            }
            return port
        }
    }

    /// Starts the master ``killMaster()`` killed again, on its port, and waits until Sentinel has
    /// turned it into a replica of the current master (`role:slave`, link up) and the group is
    /// ready for another failover.
    /// - Parameter timeout: default 60 s (Sentinel waits about 8 s after seeing it as a master,
    ///   and asks replicas for their role every 10 s).
    /// - Throws: ``TopologyError`` when no master was killed, or with every log when it does not
    ///   happen in time.
    public func restartOldMaster(timeout: Duration = .seconds(60)) async throws {
        guard let port = killedMasterPort, let node = dataNode(port: port) else {
            throw TopologyError("restartOldMaster() needs a master killed with killMaster() first")
        }
        try node.startAgain()
        killedMasterPort = nil
        try await waitUntil("the old master on port \(port) to become a replica", timeout: timeout, logs: logs) {
            let master = try agreedMasterPort()
            let info = try replicationInfo(port: port)
            guard info["role"] == "slave", info["master_port"] == String(master), info["master_link_status"] == "up"
            else {
                throw NotYet(
                    "port \(port) reports role:\(info["role"] ?? "?") master_port:\(info["master_port"] ?? "-") "
                        + "master_link_status:\(info["master_link_status"] ?? "-"); the master is on \(master)")
            }
        }
        try await waitUntilReady(timeout: timeout)
    }

    // MARK: - Sentinels

    /// Stops Sentinel `index` (SIGTERM). Its configuration file, with what it learnt, stays.
    public func stopSentinel(_ index: Int) {
        sentinels[index].stop()
    }

    /// Starts Sentinel `index` again on its port and waits until it names a master.
    /// - Throws: ``RedisServerProcess/StartError`` or ``TopologyError`` (with its log).
    public func startSentinel(_ index: Int, timeout: Duration = .seconds(30)) async throws {
        let sentinel = sentinels[index]
        try sentinel.startAgain()
        try await waitUntil("Sentinel \(index) (port \(sentinel.port)) to name a master", timeout: timeout, logs: logs)
        {
            _ = try masterPort(accordingTo: sentinel)
        }
    }

    /// Stops every Sentinel.
    public func stopAllSentinels() {
        sentinels.indices.forEach(stopSentinel)
    }

    /// Starts every stopped Sentinel again; see ``startSentinel(_:timeout:)``.
    public func startAllSentinels(timeout: Duration = .seconds(30)) async throws {
        for index in sentinels.indices where !sentinels[index].isRunning {
            try await startSentinel(index, timeout: timeout)
        }
    }

    // MARK: - Readiness

    /// Waits until a failover would work: every running Sentinel names the same master, which
    /// reports `role:master`; every other running data node is its replica with
    /// `master_link_status:up`; and every running Sentinel sees the master and those replicas
    /// without a down flag and knows the other running Sentinels.
    /// - Throws: ``TopologyError`` with every log when it does not happen within `timeout`.
    public func waitUntilReady(timeout: Duration = .seconds(60)) async throws {
        try await waitUntil("the Sentinel group to be ready", timeout: timeout, logs: logs) {
            let master = try agreedMasterPort()
            guard try replicationInfo(port: master)["role"] == "master" else {
                throw NotYet("the Sentinels name port \(master), which is not a master")
            }
            let replicas = dataNodes.filter { $0.isRunning && $0.port != master }.map(\.port)
            for port in replicas {
                let info = try replicationInfo(port: port)
                guard info["master_port"] == String(master), info["master_link_status"] == "up" else {
                    throw NotYet(
                        "replica \(port): master_port:\(info["master_port"] ?? "-") link:\(info["master_link_status"] ?? "-")"
                    )
                }
            }
            let running = sentinels.filter(\.isRunning)
            for sentinel in running {
                try checkSentinelView(sentinel, master: master, replicas: replicas, otherSentinels: running.count - 1)
            }
        }
    }

    /// The master's port, when every running Sentinel names the same one.
    private func agreedMasterPort() throws -> Int {
        let ports = Set(try sentinels.filter(\.isRunning).map(masterPort(accordingTo:)))
        guard ports.count == 1, let port = ports.first else {
            throw NotYet(
                ports.isEmpty ? "no Sentinel is running" : "the Sentinels name different masters: \(ports.sorted())")
        }
        return port
    }

    private func masterPort(accordingTo sentinel: RedisServerProcess) throws -> Int {
        let reply = try sentinelReply(sentinel, ["get-master-addr-by-name", masterName])
        guard let address = reply as? [Any], address.count == 2, let port = Int("\(address[1])") else {
            throw NotYet("Sentinel :\(sentinel.port) does not know the master \(masterName): \(reply ?? "null")")
        }
        return port
    }

    /// Checks that `sentinel` sees `master` and `replicas` healthy and knows `otherSentinels` peers.
    private func checkSentinelView(_ sentinel: RedisServerProcess, master: Int, replicas: [Int], otherSentinels: Int)
        throws
    {
        let name = "Sentinel :\(sentinel.port)"
        let state = try sentinelReply(sentinel, ["master", masterName]) as? [String: Any] ?? [:]
        guard "\(state["port"] ?? "")" == String(master), "\(state["flags"] ?? "")" == "master" else {
            throw NotYet("\(name) sees the master as port \(state["port"] ?? "?") with flags \(state["flags"] ?? "?")")
        }
        let known = try sentinelReply(sentinel, ["replicas", masterName]) as? [[String: Any]] ?? []
        let healthy = Set(known.filter { "\($0["flags"] ?? "")" == "slave" }.compactMap { Int("\($0["port"] ?? "")") })
        guard healthy.isSuperset(of: replicas) else {
            throw NotYet("\(name) sees healthy replicas \(healthy.sorted()), not all of \(replicas)")
        }
        let peers = try sentinelReply(sentinel, ["sentinels", masterName]) as? [[String: Any]] ?? []
        let healthyPeers = peers.filter { "\($0["flags"] ?? "")" == "sentinel" }.count
        guard healthyPeers >= otherSentinels else {
            throw NotYet("\(name) knows \(healthyPeers) healthy Sentinels, not \(otherSentinels)")
        }
    }

    private func sentinelReply(_ sentinel: RedisServerProcess, _ arguments: [String]) throws -> Any? {
        try RedisCLI.reply(port: sentinel.port, ["SENTINEL"] + arguments, password: sentinelPassword)
    }
}

/// `value` as a double-quoted Redis configuration argument, so that spaces and quotes survive.
func configQuoted(_ value: String) -> String {
    "\"" + value.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"") + "\""
}
