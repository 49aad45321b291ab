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
    private let slots: ClusterSlotTable
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

    // MARK: - Pipelines

    /// One command of a pipeline that still waits for its reply.
    private struct Pending: Sendable {
        let index: Int
        let slot: Int?
        var target: RedisEndpoint.Transport
        var asking = false
        var redirects = 0
    }

    /// Sends commands, each to the node serving its slot; replies in order, error replies in place.
    func pipeline(_ commands: [RedisCommand]) async throws -> [RESPValue] {
        guard !commands.isEmpty else { return [] }
        var snapshot = try await slots.snapshot()
        let slotOf = commands.map(\.hashSlot)
        let keyless = try keylessTarget(slots: slotOf, in: snapshot.map)
        var pending = try commands.indices.map { index in
            Pending(
                index: index, slot: slotOf[index],
                target: try target(forSlot: slotOf[index], keyless: keyless, in: snapshot.map))
        }
        var replies = [RESPValue?](repeating: nil, count: commands.count)
        var retry = RetryClock(budget: retryBudget)
        while !pending.isEmpty {
            var outcome = RoundOutcome()
            for (group, result) in await send(pending, of: commands) {
                switch result {
                case .success(let groupReplies):
                    for (item, reply) in zip(group, groupReplies) {
                        settle(item, reply: reply, retry: &retry, into: &replies, outcome: &outcome)
                    }
                case .failure(let error):
                    guard let redisError = error as? RedisError, redisError.meansNothingWasSent, !retry.isOver else {
                        throw error
                    }
                    outcome.unsent += group
                    outcome.connectError = redisError
                }
            }
            if outcome.mapIsStale { slots.refreshInBackground(after: snapshot.epoch) }
            if let connectError = outcome.connectError {
                do {
                    snapshot = try await slots.refreshed(after: snapshot.epoch)
                } catch {
                    throw connectError
                }
            }
            if outcome.mustPause { try await Task.sleep(for: retry.nextPause()) }
            pending =
                try outcome.redirected + route(outcome.unsent + outcome.later, by: slots.current?.map ?? snapshot.map)
            pending.sort { $0.index < $1.index }
        }
        return replies.map { $0! }
    }

    /// What one round of a pipeline left to do.
    private struct RoundOutcome {
        /// Commands sent elsewhere by `MOVED`/`ASK`, with their targets.
        var redirected: [Pending] = []
        /// Commands to send again after a pause (`TRYAGAIN`, `CLUSTERDOWN`).
        var later: [Pending] = []
        /// Commands whose node could not be reached (nothing was sent).
        var unsent: [Pending] = []
        var connectError: RedisError?
        /// A `MOVED` was seen: load a new map in the background.
        var mapIsStale = false

        var mustPause: Bool { !later.isEmpty || !unsent.isEmpty }
    }

    /// Files one reply: the answer, or a redirect or retry to follow.
    private func settle(
        _ item: Pending, reply: RESPValue, retry: inout RetryClock, into replies: inout [RESPValue?],
        outcome: inout RoundOutcome
    ) {
        if !retry.isOver, item.redirects < Self.maxRedirects,
            let redirect = ClusterRedirect(reply, replyingHost: Self.host(of: item.target))
        {
            var next = item
            next.target = redirect.target
            next.asking = redirect.kind == .ask
            next.redirects += 1
            if redirect.kind == .moved {
                slots.learn(redirect)
                outcome.mapIsStale = true
            }
            outcome.redirected.append(next)
        } else if !retry.isOver, reply.isClusterRetryLater {
            outcome.later.append(item)
        } else {
            replies[item.index] = reply
        }
    }

    /// Gives each command the master of its slot; commands without keys go with the first keyed
    /// command, or to the map's fixed master when there is none.
    private func route(_ items: [Pending], by map: ClusterSlotMap) throws -> [Pending] {
        let keyless = try keylessTarget(slots: items.map(\.slot), in: map)
        return try items.map { item in
            var routed = item
            routed.target = try target(forSlot: item.slot, keyless: keyless, in: map)
            routed.asking = false
            return routed
        }
    }

    /// Where a pipeline's commands without keys go: with its first keyed command.
    private func keylessTarget(slots: [Int?], in map: ClusterSlotMap) throws -> RedisEndpoint.Transport {
        try slots.lazy.compactMap { $0 }.first.flatMap(map.master(ofSlot:)) ?? anyMaster(of: map)
    }

    private func target(forSlot slot: Int?, keyless: RedisEndpoint.Transport, in map: ClusterSlotMap) throws
        -> RedisEndpoint.Transport
    {
        guard let slot else { return keyless }
        return try map.master(ofSlot: slot) ?? anyMaster(of: map)
    }

    /// Sends each node its commands (`ASKING` first where asked), all nodes at once.
    private func send(_ pending: [Pending], of commands: [RedisCommand]) async -> [(
        [Pending],
        Result<
            [RESPValue], any Error
        >
    )] {
        var groups: [(target: RedisEndpoint.Transport, items: [Pending])] = []
        for item in pending {
            if let index = groups.firstIndex(where: { $0.target == item.target }) {
                groups[index].items.append(item)
            } else {
                groups.append((item.target, [item]))
            }
        }
        if groups.count == 1 {
            return [(groups[0].items, await sendGroup(groups[0].items, to: groups[0].target, commands: commands))]
        }
        return await withTaskGroup(of: (Int, Result<[RESPValue], any Error>).self) { tasks in
            for (number, group) in groups.enumerated() {
                tasks.addTask { (number, await self.sendGroup(group.items, to: group.target, commands: commands)) }
            }
            var results = [Result<[RESPValue], any Error>?](repeating: nil, count: groups.count)
            for await (number, result) in tasks { results[number] = result }
            return zip(groups, results).map { ($0.items, $1!) }
        }
    }

    /// One node's share of a pipeline: its replies, one per item.
    private func sendGroup(_ items: [Pending], to target: RedisEndpoint.Transport, commands: [RedisCommand]) async
        -> Result<[RESPValue], any Error>
    {
        var wire: [RedisCommand] = []
        var positions: [Int] = []
        for item in items {
            if item.asking { wire.append(RedisCommand("ASKING")) }
            positions.append(wire.count)
            wire.append(commands[item.index])
        }
        do {
            let replies = try await node(target).pipeline(wire)
            return .success(positions.map { replies[$0] })
        } catch {
            return .failure(error)
        }
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
    private func node(_ transport: RedisEndpoint.Transport) throws -> RedisNodeClient {
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

    private func anyMaster(of map: ClusterSlotMap) throws -> RedisEndpoint.Transport {
        guard let master = map.anyMaster else {
            throw RedisError.connectionFailed(address: endpoint.address, reason: "the slot map names no master")
        }
        return master
    }

    private static func host(of transport: RedisEndpoint.Transport) -> String? {
        if case .tcp(let host, _) = transport { return host }
        return nil
    }
}

/// The deadline and pauses of one call's retries.
struct RetryClock {
    private let deadline: ContinuousClock.Instant
    private var backoff = Backoff(base: .milliseconds(10), cap: .milliseconds(500))

    init(budget: Duration) {
        deadline = .now + budget
    }

    /// Whether the budget is spent: answers are then returned (or errors thrown) as they are.
    var isOver: Bool { ContinuousClock.now >= deadline }

    /// The next pause, never past the deadline.
    mutating func nextPause() -> Duration {
        min(backoff.next(), max(.zero, deadline - .now))
    }
}

/// The state of one exclusive-connection call across its retries.
private struct ExclusiveAttempt {
    var target: RedisEndpoint.Transport
    var asking = false
    var redirects = 0
    var retry: RetryClock

    enum Step {
        /// Give up: the error reaches the caller.
        case fail
        /// Run again on the node named (``target`` and ``asking`` are set).
        case redirect(ClusterRedirect)
        /// Run again on the slot's master after a pause (`TRYAGAIN`, `CLUSTERDOWN`).
        case pause
        /// Nothing was sent: load a new map, then run again on the slot's master.
        case refreshMap
    }

    init(target: RedisEndpoint.Transport, budget: Duration) {
        self.target = target
        self.retry = RetryClock(budget: budget)
    }

    mutating func next(after error: RedisError, bodyStarted: Bool) -> Step {
        guard !retry.isOver else { return .fail }
        var replyingHost: String?
        if case .tcp(let host, _) = target { replyingHost = host }
        if let redirect = error.clusterRedirect(replyingHost: replyingHost), redirects < ClusterRouter.maxRedirects {
            redirects += 1
            target = redirect.target
            asking = redirect.kind == .ask
            return .redirect(redirect)
        }
        asking = false
        if let message = error.serverError?.message, ClusterRedirect.asksToRetryLater(message) { return .pause }
        if !bodyStarted && error.meansNothingWasSent { return .refreshMap }
        return .fail
    }
}
