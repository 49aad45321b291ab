/// Which master serves each hash slot of a Redis Cluster, as one node described it
/// (`CLUSTER SHARDS`, or `CLUSTER SLOTS` before Redis 7).
struct ClusterSlotMap: Sendable {
    /// The masters that serve slots.
    private(set) var masters: [RedisEndpoint.Transport] = []
    /// Every node the reply named, replicas included: where to ask for the next map.
    private(set) var nodes: [RedisEndpoint.Transport] = []
    /// For each slot, 1 + the index in `masters` of the node serving it; 0 when none does.
    private var owners = [UInt16](repeating: 0, count: HashSlot.count)

    /// How many slots have a master.
    var servedSlots: Int { owners.lazy.filter { $0 != 0 }.count }

    /// The master serving `slot`, if any.
    func master(ofSlot slot: Int) -> RedisEndpoint.Transport? {
        let owner = Int(owners[slot])
        return owner == 0 ? nil : masters[owner - 1]
    }

    /// The master for commands without keys: the one serving the lowest served slot, so that
    /// they all go to one node (`TIME` alone always reads the same clock).
    var anyMaster: RedisEndpoint.Transport? {
        owners.first { $0 != 0 }.map { masters[Int($0) - 1] }
    }

    /// Records that `master` serves `slot` now (after a `MOVED`), until the next full map.
    mutating func assign(slot: Int, to master: RedisEndpoint.Transport) {
        guard self.master(ofSlot: slot) != master else { return }
        owners[slot] = UInt16(index(of: master) + 1)
        if !nodes.contains(master) { nodes.append(master) }
    }

    private mutating func index(of master: RedisEndpoint.Transport) -> Int {
        if let index = masters.firstIndex(of: master) { return index }
        masters.append(master)
        return masters.count - 1
    }

    private mutating func assign(_ range: ClosedRange<Int>, to master: RedisEndpoint.Transport) throws(ParseError) {
        guard range.lowerBound >= 0, range.upperBound < HashSlot.count else {
            throw ParseError("slot range \(range) is outside 0-\(HashSlot.count - 1)")
        }
        let owner = UInt16(index(of: master) + 1)
        for slot in range { owners[slot] = owner }
    }

    /// What was wrong with a reply.
    struct ParseError: Error, Sendable {
        let reason: String
        init(_ reason: String) { self.reason = reason }
    }

    // MARK: - CLUSTER SHARDS (Redis 7)

    /// Reads a `CLUSTER SHARDS` reply: each shard is a map (a flat array in RESP2) with `slots`
    /// (start, end, start, end, ...) and `nodes`, each node a map with `ip`, `endpoint`, `port`,
    /// `tls-port`, `role` and `health`.
    /// - Parameters:
    ///   - askedHost: the host of the node that answered, for nodes whose address it does not know.
    ///   - tls: whether the client speaks TLS (it then uses `tls-port` when a node has one).
    init(shards reply: RESPValue, askedHost: String, tls: Bool) throws(ParseError) {
        guard let shards = reply.array else { throw ParseError("CLUSTER SHARDS did not answer an array") }
        for shard in shards {
            let fields = Self.fields(shard)
            let ranges = (fields["slots"]?.array ?? []).compactMap(\.integer).map(Int.init)
            var master: RedisEndpoint.Transport?
            for node in fields["nodes"]?.array ?? [] {
                let nodeFields = Self.fields(node)
                guard let transport = Self.transport(of: nodeFields, askedHost: askedHost, tls: tls) else { continue }
                if !nodes.contains(transport) { nodes.append(transport) }
                if nodeFields["role"]?.string == "master" { master = transport }
            }
            guard ranges.count % 2 == 0 else { throw ParseError("a shard's slots are not start-end pairs") }
            guard let master else { continue }
            for pair in stride(from: 0, to: ranges.count, by: 2) {
                guard ranges[pair] <= ranges[pair + 1] else { throw ParseError("a shard's slot range is reversed") }
                try assign(ranges[pair]...ranges[pair + 1], to: master)
            }
        }
    }

    /// A RESP2 map (alternating names and values) as a dictionary.
    private static func fields(_ value: RESPValue) -> [String: RESPValue] {
        let items = value.array ?? []
        var fields: [String: RESPValue] = [:]
        for pair in stride(from: 0, to: items.count - 1, by: 2) {
            if let name = items[pair].string { fields[name] = items[pair + 1] }
        }
        return fields
    }

    /// A node's address: its preferred endpoint (an IP by default, or a host name with
    /// `cluster-preferred-endpoint-type hostname`), else its IP, else the node that answered.
    private static func transport(of node: [String: RESPValue], askedHost: String, tls: Bool)
        -> RedisEndpoint.Transport?
    {
        let plainPort = node["port"]?.integer ?? 0
        let tlsPort = node["tls-port"]?.integer ?? 0
        let port = tls && tlsPort > 0 ? tlsPort : plainPort
        guard port > 0 else { return nil }
        let candidates = [node["endpoint"]?.string, node["ip"]?.string]
        let host = candidates.compactMap { $0 }.first { !$0.isEmpty && $0 != "?" } ?? askedHost
        return .tcp(host: host, port: Int(port))
    }

    // MARK: - CLUSTER SLOTS (before Redis 7)

    /// Reads a `CLUSTER SLOTS` reply: `[start, end, [host, port, id, ...], replica, ...]` per range.
    /// - Parameter askedHost: the host of the node that answered, for an empty host (unknown).
    init(slots reply: RESPValue, askedHost: String) throws(ParseError) {
        guard let ranges = reply.array else { throw ParseError("CLUSTER SLOTS did not answer an array") }
        for entry in ranges {
            guard let parts = entry.array, parts.count >= 3, let start = parts[0].integer, let end = parts[1].integer,
                start <= end
            else { throw ParseError("a CLUSTER SLOTS entry is not [start, end, master, ...]") }
            var transports: [RedisEndpoint.Transport] = []
            for node in parts[2...] {
                guard let info = node.array, info.count >= 2, let host = info[0].string, let port = info[1].integer,
                    host != "?", port > 0
                else { continue }
                transports.append(.tcp(host: host.isEmpty ? askedHost : host, port: Int(port)))
            }
            for transport in transports where !nodes.contains(transport) { nodes.append(transport) }
            // The first node of an entry is the master, when its address is known.
            guard let master = transports.first, parts[2].array?.first?.string != "?" else { continue }
            try assign(Int(start)...Int(end), to: master)
        }
    }
}
