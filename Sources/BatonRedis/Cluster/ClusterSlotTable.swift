import BatonSupport
import Foundation

/// The slot map a ``ClusterRouter`` routes by, and its reloading: one load at a time, shared by
/// every caller that needs a newer map meanwhile, so a burst of `MOVED` replies costs one
/// `CLUSTER SHARDS`, not one per request.
///
/// A load runs on a thread of its own (`baton-redis-slots`) with fresh short-lived connections:
/// it asks the node that answered last, then every node of the current map, then the seeds, and
/// takes the first map that serves any slot. Async callers suspend and blocking callers wait
/// until it ends; neither ever does network I/O on Swift's cooperative pool.
final class ClusterSlotTable: Sendable {
    /// A map and how many full loads preceded it (a `MOVED` patches the map in place, keeping
    /// its epoch: only a full load counts).
    struct Snapshot: Sendable {
        let map: ClusterSlotMap
        let epoch: Int
    }

    private struct State: Sendable {
        var map: ClusterSlotMap?
        var epoch = 0
        var load: SlotMapLoad?
        var lastAnswering: RedisEndpoint.Transport?
    }

    private let endpoint: RedisEndpoint
    private let seeds: [RedisEndpoint.Transport]
    private let options: RedisConnectionOptions
    private let state = LockedBox(State())
    private let onLoad: @Sendable (ClusterSlotMap) -> Void

    /// - Parameters:
    ///   - options: the client's; a load uses shorter timeouts and no reconnecting, as the next
    ///     node is its retry.
    ///   - onLoad: hears every map a load brings (before anyone waiting for it).
    init(
        endpoint: RedisEndpoint, seeds: [RedisEndpoint.Transport], options: RedisConnectionOptions,
        onLoad: @escaping @Sendable (ClusterSlotMap) -> Void
    ) {
        self.endpoint = endpoint
        self.seeds = seeds
        self.onLoad = onLoad
        var short = options
        short.connectTimeout = min(options.connectTimeout, .seconds(1))
        short.commandTimeout = .seconds(2)
        short.reconnect = .never
        self.options = short
    }

    /// The current map, if one was loaded.
    var current: Snapshot? {
        state.withLockedValue { state in state.map.map { Snapshot(map: $0, epoch: state.epoch) } }
    }

    /// The current map, loading the first one.
    func snapshot() async throws -> Snapshot {
        if let current { return current }
        return try await refreshed(after: 0)
    }

    /// Blocking form of ``snapshot()``.
    func snapshotBlocking() throws -> Snapshot {
        if let current { return current }
        return try refreshedBlocking(after: 0)
    }

    /// A map from a load newer than `epoch`: the current one if it is, else the load under way
    /// or a new one.
    /// - Throws: ``RedisError/connectionFailed(address:reason:)`` naming each node's failure when
    ///   no node answered with a map.
    func refreshed(after epoch: Int) async throws -> Snapshot {
        switch begin(after: epoch) {
        case .ready(let snapshot): return snapshot
        case .loading(let load): return try await load.result()
        }
    }

    /// Blocking form of ``refreshed(after:)``.
    func refreshedBlocking(after epoch: Int) throws -> Snapshot {
        switch begin(after: epoch) {
        case .ready(let snapshot): return snapshot
        case .loading(let load): return try load.waitForResult()
        }
    }

    /// Starts a load unless the map is newer than `epoch` or a load is under way; does not wait.
    func refreshInBackground(after epoch: Int) {
        _ = begin(after: epoch)
    }

    /// Records a `MOVED`: the slot's new master serves it from now on, until the next load.
    func learn(_ redirect: ClusterRedirect) {
        guard redirect.kind == .moved else { return }
        state.withLockedValue { $0.map?.assign(slot: redirect.slot, to: redirect.target) }
    }

    private enum Begun {
        case ready(Snapshot)
        case loading(SlotMapLoad)
    }

    private func begin(after epoch: Int) -> Begun {
        let (begun, started) = state.withLockedValue { state -> (Begun, Bool) in
            if let map = state.map, state.epoch > epoch {
                return (.ready(Snapshot(map: map, epoch: state.epoch)), false)
            }
            if let load = state.load { return (.loading(load), false) }
            let load = SlotMapLoad()
            state.load = load
            return (.loading(load), true)
        }
        if started, case .loading(let load) = begun {
            let thread = Thread { [self] in load.finish(with: Result { try loadMap() }) }
            thread.name = "baton-redis-slots"
            thread.start()
        }
        return begun
    }

    /// Asks one node after another for the map; records and returns the first usable one.
    private func loadMap() throws -> Snapshot {
        let (known, last) = state.withLockedValue { ($0.map?.nodes ?? [], $0.lastAnswering) }
        var candidates: [RedisEndpoint.Transport] = []
        for node in [last].compactMap({ $0 }) + known + seeds where !candidates.contains(node) {
            candidates.append(node)
        }
        var reasons: [String] = []
        for node in candidates {
            do {
                let map = try ask(node)
                onLoad(map)
                return state.withLockedValue { state in
                    state.map = map
                    state.epoch += 1
                    state.load = nil
                    state.lastAnswering = node
                    return Snapshot(map: map, epoch: state.epoch)
                }
            } catch {
                reasons.append("\(RedisEndpoint.address(of: node)): \(error)")
            }
        }
        state.withLockedValue { $0.load = nil }
        var reason = "no node gave a slot map (" + reasons.joined(separator: "; ") + ")"
        if reasons.contains(where: { $0.contains("cluster support disabled") }) {
            reason += ": a redis-cluster:// URL needs Redis Cluster nodes; for a single server, use redis://"
        }
        throw RedisError.connectionFailed(address: endpoint.address, reason: reason)
    }

    /// One node's map: `CLUSTER SHARDS`, or `CLUSTER SLOTS` where that is unknown (Redis 6).
    private func ask(_ node: RedisEndpoint.Transport) throws -> ClusterSlotMap {
        let connection = try RedisConnection(endpoint: endpoint.server(at: node), options: options)
        let host: String
        switch node {
        case .tcp(let name, _): host = name
        case .unix: host = "localhost"
        }
        let map: ClusterSlotMap
        do {
            do {
                let reply = try connection.send(RedisCommand("CLUSTER", "SHARDS"))
                map = try ClusterSlotMap(shards: reply, askedHost: host, tls: endpoint.tls != nil)
            } catch let error as RedisError where error.serverError != nil {
                let reply = try connection.send(RedisCommand("CLUSTER", "SLOTS"))
                map = try ClusterSlotMap(slots: reply, askedHost: host)
            }
        } catch let error as ClusterSlotMap.ParseError {
            throw RedisError.unexpectedReply(command: "CLUSTER SHARDS", reply: error.reason)
        }
        guard map.servedSlots > 0 else {
            throw RedisError.unexpectedReply(command: "CLUSTER SHARDS", reply: "no slot is served (not joined yet?)")
        }
        return map
    }
}

// @unchecked: `condition` guards `outcome` and `waiters`.
/// One slot-map load that async and blocking callers wait for together.
private final class SlotMapLoad: @unchecked Sendable {
    private let condition = NSCondition()
    private var outcome: Result<ClusterSlotTable.Snapshot, any Error>?
    private var waiters: [CheckedContinuation<ClusterSlotTable.Snapshot, any Error>] = []

    func finish(with outcome: Result<ClusterSlotTable.Snapshot, any Error>) {
        condition.lock()
        self.outcome = outcome
        let waiting = waiters
        waiters = []
        condition.broadcast()
        condition.unlock()
        waiting.forEach { $0.resume(with: outcome) }
    }

    func result() async throws -> ClusterSlotTable.Snapshot {
        try await withCheckedThrowingContinuation { continuation in
            condition.lock()
            if let outcome {
                condition.unlock()
                continuation.resume(with: outcome)
            } else {
                waiters.append(continuation)
                condition.unlock()
            }
        }
    }

    /// Blocks the calling (non-cooperative) thread until the load ends.
    func waitForResult() throws -> ClusterSlotTable.Snapshot {
        condition.lock()
        defer { condition.unlock() }
        while outcome == nil { condition.wait() }
        return try outcome!.get()
    }
}
