import BatonSupport
import Foundation

/// Routes a ``RedisClient``'s commands in a Redis Cluster: each to the master serving its key's
/// hash slot, through that node's ``RedisNodeClient`` (its pipelined connection and its pool),
/// made on first use.
///
/// **Routing:** the slot map comes from `CLUSTER SHARDS` (``ClusterSlotTable``). A command goes
/// to the master of its first key's slot (``RedisCommand/routingKey``); a command without keys
/// goes with the keyed commands of its pipeline, or to one fixed master. A pipeline whose
/// commands live on several nodes is split per node, sent to all at once, and its replies put
/// back in order.
///
/// **Answers that send a command elsewhere** are followed within ``retryBudget`` (the command
/// timeout), so callers never see them while the cluster changes:
/// - `MOVED slot host:port`: the slot now lives there. The map learns it at once, a new map is
///   loaded in the background (one load per burst), and the command is sent to that node.
/// - `ASK slot host:port`: the slot is being migrated and the key is already on the target:
///   `ASKING` and the command go there together (adjacent on its pipelined connection), once.
/// - `TRYAGAIN`, `CLUSTERDOWN`: the same command again after a ``Backoff`` pause.
/// - A connection that could not be made (refused, or the connect timed out: a master that died
///   or failed over): nothing was sent, so after a fresh map the command goes to the slot's
///   current master. A command whose connection broke *in flight* is never sent again (it may
///   have run): its error reaches the caller, as everywhere in the client.
final class ClusterRouter: Sendable {
    /// The cluster endpoint (seeds, credentials, TLS).
    let endpoint: RedisEndpoint
    private let options: RedisClientOptions
    let slots: ClusterSlotTable
    private let nodes: LockedBox<NodeTable>
    /// How long one call keeps following redirects and retrying: the command timeout, or 5 s
    /// when commands have none.
    let retryBudget: Duration
    /// A `MOVED`/`ASK` chain longer than this means the cluster is in flux: the last answer is
    /// returned as it is.
    static let maxRedirects = 8
    /// How long a node that is no longer a master in any new map keeps its connections before
    /// they are closed (long enough for every command sent to it to have ended).
    static let retiredNodeGrace: Duration = .seconds(60)

    private struct NodeTable: Sendable {
        var clients: [RedisEndpoint.Transport: RedisNodeClient] = [:]
        /// Nodes with connections that the last maps did not name as masters, and since when.
        var absentSince: [RedisEndpoint.Transport: ContinuousClock.Instant] = [:]
        var isShutDown = false
    }

    init(endpoint: RedisEndpoint, seeds: [RedisEndpoint.Transport], options: RedisClientOptions) {
        let nodes = LockedBox(NodeTable())
        self.endpoint = endpoint
        self.options = options
        self.nodes = nodes
        self.slots = ClusterSlotTable(endpoint: endpoint, seeds: seeds, options: options.connection) { map in
            Self.retire(from: nodes, keeping: Set(map.masters))
        }
        self.retryBudget = options.connection.commandTimeout ?? .seconds(5)
    }

    /// Stops every node's connections: queued and in-flight work fails with ``RedisError/closed``.
    func shutDown() {
        let clients = nodes.withLockedValue { table in
            table.isShutDown = true
            defer { table.clients = [:] }
            return Array(table.clients.values)
        }
        clients.forEach { $0.shutDown() }
    }

    // MARK: - Exclusive connections

    /// Runs `body` on a pooled connection to the master serving `slot` (any master for `nil`).
    ///
    /// A body that fails with `MOVED` or `ASK` runs again on the node named (after `ASKING` for
    /// `ASK`); one that could not get a connection at all runs again on the slot's master after a
    /// fresh map. A redirect comes before any command on the slot's keys ran, so the body must
    /// merely be safe to run again after keyless commands (`WAIT`, `PING`).
    func withConnection<T: Sendable>(slot: Int?, _ body: @escaping @Sendable (RedisConnection) throws -> T)
        async throws -> T
    {
        var snapshot = try await slots.snapshot()
        var attempt = ExclusiveAttempt(target: try target(forSlot: slot, in: snapshot.map), budget: retryBudget)
        while true {
            let started = LockedBox(false)
            let asking = attempt.asking
            do {
                return try await node(attempt.target).withConnection { connection in
                    try Self.prepare(connection, asking: asking, started: started)
                    defer { connection.isAskingBeforeNextCommand = false }
                    return try body(connection)
                }
            } catch let failure as RedisError {
                switch attempt.next(after: failure, bodyStarted: started.withLockedValue { $0 }) {
                case .fail:
                    throw failure
                case .redirect(let redirect):
                    noteRedirect(redirect, epoch: snapshot.epoch)
                case .pause:
                    try await Task.sleep(for: attempt.retry.nextPause())
                    attempt.target = try target(forSlot: slot, in: slots.current?.map ?? snapshot.map)
                case .refreshMap:
                    do { snapshot = try await slots.refreshed(after: snapshot.epoch) } catch { throw failure }
                    try await Task.sleep(for: attempt.retry.nextPause())
                    attempt.target = try target(forSlot: slot, in: snapshot.map)
                }
            }
        }
    }

    /// Blocking form of ``withConnection(slot:_:)`` for threads outside Swift concurrency.
    func withConnectionBlocking<T>(slot: Int?, _ body: (RedisConnection) throws -> T) throws -> T {
        var snapshot = try slots.snapshotBlocking()
        var attempt = ExclusiveAttempt(target: try target(forSlot: slot, in: snapshot.map), budget: retryBudget)
        while true {
            let started = LockedBox(false)
            let asking = attempt.asking
            do {
                return try node(attempt.target).withConnectionBlocking { connection in
                    try Self.prepare(connection, asking: asking, started: started)
                    defer { connection.isAskingBeforeNextCommand = false }
                    return try body(connection)
                }
            } catch let failure as RedisError {
                switch attempt.next(after: failure, bodyStarted: started.withLockedValue { $0 }) {
                case .fail:
                    throw failure
                case .redirect(let redirect):
                    noteRedirect(redirect, epoch: snapshot.epoch)
                case .pause:
                    Thread.sleepPrecisely(attempt.retry.nextPause())
                    attempt.target = try target(forSlot: slot, in: slots.current?.map ?? snapshot.map)
                case .refreshMap:
                    do { snapshot = try slots.refreshedBlocking(after: snapshot.epoch) } catch { throw failure }
                    Thread.sleepPrecisely(attempt.retry.nextPause())
                    attempt.target = try target(forSlot: slot, in: snapshot.map)
                }
            }
        }
    }

    /// Connects before the body runs (so a refused connect is known to have sent nothing), and
    /// arms `ASKING` for the body's first command after an `ASK`.
    private static func prepare(_ connection: RedisConnection, asking: Bool, started: LockedBox<Bool>) throws {
        try connection.ensureConnected()
        connection.isAskingBeforeNextCommand = asking
        started.withLockedValue { $0 = true }
    }

    private func noteRedirect(_ redirect: ClusterRedirect, epoch: Int) {
        guard redirect.kind == .moved else { return }
        slots.learn(redirect)
        slots.refreshInBackground(after: epoch)
    }

    // MARK: - Dedicated connections

    /// A new connection of its own to the master serving `slot` (any master for `nil`), after a
    /// fresh look at the slot map: for listener loops, which call this again to reconnect (after
    /// a `MOVED`, or when the master failed over) and so reach the slot's owner of the moment.
    func dedicatedConnection(slot: Int?, options: RedisConnectionOptions) throws -> RedisConnection {
        let snapshot = try slots.refreshedBlocking(after: slots.current?.epoch ?? 0)
        return try RedisConnection(
            endpoint: endpoint.server(at: try target(forSlot: slot, in: snapshot.map)), options: options)
    }

    // MARK: - Nodes

    /// The connections to one node, made on first use.
    func node(_ transport: RedisEndpoint.Transport) throws -> RedisNodeClient {
        try nodes.withLockedValue { table in
            if table.isShutDown { throw RedisError.closed }
            if let client = table.clients[transport] { return client }
            let made = RedisNodeClient(endpoint: endpoint.server(at: transport), options: options)
            table.clients[transport] = made
            return made
        }
    }

    /// After a new map: closes the connections of nodes that no map has named as a master for
    /// ``retiredNodeGrace`` (failed or demoted masters), so that threads do not pile up over
    /// failovers.
    private static func retire(from nodes: LockedBox<NodeTable>, keeping masters: Set<RedisEndpoint.Transport>) {
        let now = ContinuousClock.now
        let retired = nodes.withLockedValue { table -> [RedisNodeClient] in
            var retired: [RedisNodeClient] = []
            for transport in Array(table.clients.keys) {
                if masters.contains(transport) {
                    table.absentSince[transport] = nil
                    continue
                }
                let since = table.absentSince[transport] ?? now
                table.absentSince[transport] = since
                if now - since >= retiredNodeGrace, let client = table.clients.removeValue(forKey: transport) {
                    table.absentSince[transport] = nil
                    retired.append(client)
                }
            }
            return retired
        }
        retired.forEach { $0.shutDown() }
    }

    private func target(forSlot slot: Int?, in map: ClusterSlotMap) throws -> RedisEndpoint.Transport {
        try slot.flatMap(map.master(ofSlot:)) ?? anyMaster(of: map)
    }

    func anyMaster(of map: ClusterSlotMap) throws -> RedisEndpoint.Transport {
        guard let master = map.anyMaster else {
            throw RedisError.connectionFailed(address: endpoint.address, reason: "the slot map names no master")
        }
        return master
    }

    static func host(of transport: RedisEndpoint.Transport) -> String? {
        if case .tcp(let host, _) = transport { return host }
        return nil
    }
}
