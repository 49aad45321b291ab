import Foundation

#if canImport(Glibc)
    import Glibc
#endif

// @unchecked: remembers the slots of killed masters; tests call it from one task at a time.
/// A real Redis Cluster for tests: six `redis-server --cluster-enabled yes` nodes (three masters,
/// one replica each) on loopback ports whose cluster bus port (port + 10000) is free too, joined
/// with `redis-cli --cluster create`, each a ``RedisServerProcess`` with its own directory, all
/// killed in `deinit`.
///
/// ``start(arguments:nodeTimeoutMilliseconds:timeout:)`` returns once the cluster is healthy (see
/// ``waitUntilHealthy(timeout:)``). Slot moves (``migrateSlot(_:to:timeout:)``,
/// ``beginSlotMigration(_:to:movingKeys:)``, ``reshard(slots:from:to:timeout:)``) and failovers
/// (``killMaster(ofSlot:)``, ``waitForFailover(awayFrom:timeout:)``) wait until every node agrees.
///
/// ```swift
/// let cluster = try await RedisClusterProcess.start()
/// let slot = RedisClusterProcess.keySlot("{svc}:token")
/// try await cluster.migrateSlot(slot, to: cluster.masterPorts().first { $0 != try cluster.masterPort(forSlot: slot) }!)
/// let old = try cluster.killMaster(ofSlot: slot)
/// let new = try await cluster.waitForFailover(awayFrom: old)
/// ```
public final class RedisClusterProcess: @unchecked Sendable {
    /// The six nodes, in start order: the first three were made masters by `--cluster create`.
    public let servers: [RedisServerProcess]
    /// The slots each master ``killMaster(ofSlot:)`` killed served, by port.
    private var slotsOfKilledMasters: [Int: [ClosedRange<Int>]] = [:]

    /// How many masters and replicas per master the cluster has.
    public static let masterCount = 3
    /// Replicas per master.
    public static let replicasPerMaster = 1

    private init(servers: [RedisServerProcess]) {
        self.servers = servers
    }

    deinit {
        stop()
    }

    // MARK: - Starting and stopping

    /// Starts six nodes, joins them into a cluster of three masters with one replica each, and
    /// waits until it is healthy.
    /// - Parameters:
    ///   - arguments: extra `redis-server` arguments for every node.
    ///   - nodeTimeoutMilliseconds: `cluster-node-timeout` (default 2000): how long a silent node
    ///     takes to be declared failed, so the pace of failovers.
    ///   - timeout: how long the cluster may take to become healthy (default 60 s).
    /// - Throws: ``RedisServerProcess/StartError`` when a node does not start, ``TopologyError``
    ///   (with every log) when `redis-cli --cluster create` fails or the cluster is not healthy in
    ///   time.
    public static func start(
        arguments: [String] = [], nodeTimeoutMilliseconds: Int = 2000, timeout: Duration = .seconds(60)
    ) async throws -> RedisClusterProcess {
        let nodeArguments =
            [
                "--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf",
                "--cluster-node-timeout", String(nodeTimeoutMilliseconds),
                // A replica may always take over, however long its link was down.
                "--cluster-replica-validity-factor", "0",
                // A replica's first sync must not wait 5 s for other replicas.
                "--repl-diskless-sync-delay", "0",
            ] + arguments
        var servers: [RedisServerProcess] = []
        do {
            for _ in 0..<(masterCount * (1 + replicasPerMaster)) {
                servers.append(try RedisServerProcess.start(arguments: nodeArguments, mode: .server, clusterBus: true))
            }
        } catch {
            servers.forEach { $0.kill9() }
            throw error
        }
        let cluster = RedisClusterProcess(servers: servers)
        let create = try InstalledProgram.run(
            "redis-cli",
            ["--cluster", "create"] + servers.map { "127.0.0.1:\($0.port)" }
                + ["--cluster-replicas", String(replicasPerMaster), "--cluster-yes"], timeout: 60)
        guard create.succeeded, create.output.contains("All \(slotCount) slots covered") else {
            throw TopologyError(
                "`redis-cli --cluster create` failed (exit \(create.status)):\n\(create.output)", logs: cluster.logs())
        }
        try await cluster.waitUntilHealthy(timeout: timeout, replicas: masterCount * replicasPerMaster)
        return cluster
    }

    /// Kills every node (SIGKILL: the data is throwaway). `deinit` does it too.
    public func stop() {
        servers.forEach { $0.kill9() }
    }

    // MARK: - Addresses and views

    /// `redis-cluster://127.0.0.1:P1,127.0.0.1:P2,127.0.0.1:P3`: the first three nodes as seeds.
    public var url: String { url() }

    /// Baton's cluster URL, `redis-cluster://[CREDENTIALS@]127.0.0.1:P1,127.0.0.1:P2,127.0.0.1:P3`,
    /// with the first `seeds` nodes (default 3, the masters at start).
    public func url(username: String? = nil, password: String? = nil, seeds: Int = masterCount) -> String {
        let hosts = servers.prefix(seeds).map { "127.0.0.1:\($0.port)" }.joined(separator: ",")
        return "redis-cluster://\(userInfo(username: username, password: password))\(hosts)"
    }

    /// Every node's port, in start order.
    public var ports: [Int] { servers.map(\.port) }

    /// The node process on `port`, if it is one of this cluster's.
    public func server(port: Int) -> RedisServerProcess? {
        servers.first { $0.port == port }
    }

    /// The nodes as the node on `port` sees them (default: the first running node), with the
    /// process ids of the running ones.
    /// - Throws: ``TopologyError`` when that node does not answer.
    public func nodes(accordingTo port: Int? = nil) throws -> [RedisClusterNode] {
        guard let port = port ?? servers.first(where: \.isRunning)?.port else {
            throw TopologyError("no node of the cluster is running")
        }
        return try RedisClusterNode.parse(RedisCLI.text(port: port, ["CLUSTER", "NODES"])).map { node in
            var node = node
            node.pid = server(port: node.port)?.pid
            return node
        }
    }

    /// The ports of the masters that serve slots (according to the first running node).
    public func masterPorts() throws -> [Int] {
        try nodes().filter { $0.role == .master && !$0.slots.isEmpty && !$0.isFailing }.map(\.port).sorted()
    }

    /// Every node's log, for a failure message.
    public func logs() -> [(name: String, log: String)] {
        servers.map { ("cluster node :\($0.port)", $0.log) }
    }

    // MARK: - Failover

    /// Kills the master serving `slot` with SIGKILL, as a crash would.
    /// - Returns: its port (pass it to ``waitForFailover(awayFrom:timeout:)``).
    /// - Throws: ``TopologyError`` when no running node answers.
    @discardableResult
    public func killMaster(ofSlot slot: Int) throws -> Int {
        let master = try masterPort(forSlot: slot)
        slotsOfKilledMasters[master] = try nodes().first { $0.port == master }?.slots ?? []
        server(port: master)?.kill9()
        return master
    }

    /// Waits until a replica of the master on `oldPort` (killed with ``killMaster(ofSlot:)``) has
    /// taken over: every running node names one running master other than `oldPort` for all of
    /// its slots, that node reports `role:master`, and every running node reports
    /// `cluster_state:ok`.
    /// - Parameter timeout: default 60 s (the node timeout, then a replica election).
    /// - Returns: the new master's port.
    /// - Throws: ``TopologyError`` when `oldPort` was not killed with `killMaster(ofSlot:)`, or
    ///   with every log when the failover does not happen in time.
    @discardableResult
    public func waitForFailover(awayFrom oldPort: Int, timeout: Duration = .seconds(60)) async throws -> Int {
        guard let slots = slotsOfKilledMasters[oldPort], let slot = slots.first?.lowerBound else {
            throw TopologyError(
                "waitForFailover(awayFrom: \(oldPort)) needs that master killed with killMaster(ofSlot:)")
        }
        return try await waitUntil(
            "a replica to take over from the master on port \(oldPort)", timeout: timeout, logs: logs
        ) {
            var owners: Set<Int> = []
            for server in servers where server.isRunning {
                let view = try nodes(accordingTo: server.port)
                for range in slots {
                    owners.formUnion(view.filter { $0.slots.contains { $0.overlaps(range) } }.map(\.port))
                }
                try checkState(of: server.port)
            }
            guard owners.count == 1, let owner = owners.first, owner != oldPort, server(port: owner)?.isRunning == true
            else { throw NotYet("the nodes name \(owners.sorted()) for slot \(slot)") }
            let role = try RedisCLI.info(port: owner, section: "replication")["role"]
            guard role == "master" else {
                throw NotYet("port \(owner) serves slot \(slot) but reports role:\(role ?? "?")")
            }
            return owner
        }
    }

    /// Starts the node on `port` again (after ``killMaster(ofSlot:)`` or a `kill9()`) with its
    /// `nodes.conf`, and waits until the cluster is healthy with it: a former master rejoins as a
    /// replica of the node that took over.
    /// - Throws: ``RedisServerProcess/StartError``, or ``TopologyError`` with every log.
    public func restartNode(port: Int, timeout: Duration = .seconds(60)) async throws {
        guard let server = server(port: port) else { throw TopologyError("no node of the cluster on port \(port)") }
        try server.startAgain()
        slotsOfKilledMasters[port] = nil
        try await waitUntilHealthy(timeout: timeout)
    }

    // MARK: - Health

    /// Waits until the cluster is healthy as seen from every running node: `cluster_state:ok`
    /// with all 16384 slots assigned and ok; every node names the same master for every slot and
    /// sees every running node in the role (and following the master) that node reports itself;
    /// no slot is migrating or importing; no running node is flagged failing; and every running
    /// replica follows a running master with `master_link_status:up`.
    /// - Throws: ``TopologyError`` with every log when it does not happen within `timeout`.
    public func waitUntilHealthy(timeout: Duration = .seconds(60)) async throws {
        try await waitUntilHealthy(timeout: timeout, replicas: nil)
    }

    /// ``waitUntilHealthy(timeout:)``, and with `replicas`, until every view shows that many
    /// running replicas.
    private func waitUntilHealthy(timeout: Duration, replicas: Int?) async throws {
        try await waitUntil("the cluster to be healthy", timeout: timeout, logs: logs) {
            let running = Set(servers.filter(\.isRunning).map(\.port))
            var views: [Int: [RedisClusterNode]] = [:]
            for port in running {
                try checkState(of: port)
                views[port] = try nodes(accordingTo: port)
            }
            var selves: [Int: RedisClusterNode] = [:]
            for (port, view) in views {
                guard let me = view.first(where: { $0.flags.contains("myself") }) else {
                    throw NotYet("node \(port) does not list itself")
                }
                selves[port] = me
            }
            for (port, view) in views {
                try checkView(view, of: port, selves: selves, replicas: replicas)
            }
            let slotMaps = Set(views.values.map(Self.slotMap))
            guard slotMaps.count == 1 else { throw NotYet("the nodes disagree on the slot map: \(slotMaps.sorted())") }
            for (port, me) in selves where me.role == .replica {
                let link = try RedisCLI.info(port: port, section: "replication")["master_link_status"]
                guard link == "up" else { throw NotYet("replica \(port): master_link_status:\(link ?? "?")") }
            }
        }
    }

    /// Throws ``NotYet`` unless the node on `port` sees the running nodes (`selves`, as each sees
    /// itself) as they are, none failing, no open slot, and `replicas` running replicas if given.
    private func checkView(_ view: [RedisClusterNode], of port: Int, selves: [Int: RedisClusterNode], replicas: Int?)
        throws
    {
        if let open = view.first(where: { !$0.migrating.isEmpty || !$0.importing.isEmpty }) {
            throw NotYet("node \(open.port) has open slots: migrating \(open.migrating) importing \(open.importing)")
        }
        for node in view {
            guard let actual = selves[node.port] else { continue }
            guard !node.isFailing, node.isConnected else {
                throw NotYet(
                    "node \(port) sees \(node.port) as \(node.flags.joined(separator: ",")) \(node.isConnected ? "" : "(disconnected)")"
                )
            }
            guard node.role == actual.role, node.masterID == actual.masterID else {
                throw NotYet(
                    "node \(port) sees \(node.port) as \(node.role) of \(node.masterID ?? "-"), "
                        + "it is \(actual.role) of \(actual.masterID ?? "-")")
            }
            if actual.role == .replica, !selves.values.contains(where: { $0.id == actual.masterID }) {
                throw NotYet("replica \(node.port) follows \(actual.masterID ?? "nobody"), which is not running")
            }
        }
        let seen = view.filter { selves[$0.port] != nil && $0.role == .replica }.count
        if let replicas, seen != replicas {
            throw NotYet("node \(port) sees \(seen) running replicas, not \(replicas)")
        }
    }

    /// Throws ``NotYet`` unless the node on `port` reports `cluster_state:ok` with every slot ok.
    func checkState(of port: Int) throws {
        let info = try RedisCLI.fields(port: port, ["CLUSTER", "INFO"])
        let all = String(Self.slotCount)
        guard info["cluster_state"] == "ok", info["cluster_slots_assigned"] == all, info["cluster_slots_ok"] == all
        else {
            throw NotYet(
                "node \(port): cluster_state:\(info["cluster_state"] ?? "?") "
                    + "slots assigned \(info["cluster_slots_assigned"] ?? "?") ok \(info["cluster_slots_ok"] ?? "?")")
        }
    }

    /// A view's slot ownership as text (`0-5460:PORT ...`), to compare views.
    static func slotMap(_ view: [RedisClusterNode]) -> String {
        view.flatMap { node in node.slots.map { (range: $0, port: node.port) } }
            .sorted { $0.range.lowerBound < $1.range.lowerBound }
            .map { "\($0.range.lowerBound)-\($0.range.upperBound):\($0.port)" }
            .joined(separator: " ")
    }
}
