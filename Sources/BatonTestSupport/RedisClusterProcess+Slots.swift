import Foundation

extension RedisClusterProcess {
    /// A slot being moved between two masters: `MIGRATING` on the source, `IMPORTING` on the
    /// target. Until ``RedisClusterProcess/finishSlotMigration(_:timeout:)``, the source answers
    /// `-ASK` for the slot's keys it no longer has, and the target serves them only after `ASKING`.
    public struct SlotMigration: Sendable, Equatable {
        /// The slot.
        public let slot: Int
        /// The master that served it.
        public let sourcePort: Int
        /// The master it moves to.
        public let targetPort: Int
        /// The source's node id.
        public let sourceID: String
        /// The target's node id.
        public let targetID: String
    }

    /// The port of the master serving `slot`, according to the first running node.
    /// - Throws: ``TopologyError`` when no running node answers or none serves the slot.
    public func masterPort(forSlot slot: Int) throws -> Int {
        guard let master = try nodes().first(where: { $0.role == .master && $0.serves(slot) }) else {
            throw TopologyError("no master serves slot \(slot)", logs: logs())
        }
        return master.port
    }

    /// Moves `slot`, with its keys, to the master on `port` (`CLUSTER SETSLOT` IMPORTING and
    /// MIGRATING, `MIGRATE` of every key, `SETSLOT NODE` on every master), and waits until every
    /// node agrees (``waitUntilHealthy(timeout:)``). Nothing happens when that master already
    /// serves it.
    /// - Throws: ``TopologyError`` for a failed command (with every log), or when the nodes do
    ///   not agree in time.
    public func migrateSlot(_ slot: Int, to port: Int, timeout: Duration = .seconds(60)) async throws {
        guard try masterPort(forSlot: slot) != port else { return }
        try await finishSlotMigration(try beginSlotMigration(slot, to: port, movingKeys: []), timeout: timeout)
    }

    /// Starts moving `slot` to the master on `port` and moves only `keys` (those of them the
    /// source has; each must hash to `slot`): the slot is left half-migrated, so a test can see
    /// `-ASK` redirects. Finish with ``finishSlotMigration(_:timeout:)``.
    /// - Throws: ``TopologyError`` when `port` is not another master, a key is not in `slot`, or a
    ///   command fails (with every log).
    public func beginSlotMigration(_ slot: Int, to port: Int, movingKeys keys: [String]) throws -> SlotMigration {
        if let stray = keys.first(where: { Self.keySlot($0) != slot }) {
            throw TopologyError("the key \(stray) is in slot \(Self.keySlot(stray)), not \(slot)")
        }
        let view = try nodes()
        guard let source = view.first(where: { $0.role == .master && $0.serves(slot) }),
            let target = view.first(where: { $0.port == port && $0.role == .master }), source.port != port
        else {
            throw TopologyError("slot \(slot) cannot move to port \(port): it must be another master", logs: logs())
        }
        let migration = SlotMigration(
            slot: slot, sourcePort: source.port, targetPort: target.port, sourceID: source.id, targetID: target.id)
        // The target first: a client sent there by -ASK must find it importing.
        try command(port, ["CLUSTER", "SETSLOT", String(slot), "IMPORTING", source.id])
        try command(source.port, ["CLUSTER", "SETSLOT", String(slot), "MIGRATING", target.id])
        try moveKeys(keys, of: migration)
        return migration
    }

    /// Moves the rest of the slot's keys and gives the slot to the target on every master (the
    /// target first, then the source, as the cluster specification says), then waits until every
    /// node agrees (``waitUntilHealthy(timeout:)``).
    /// - Throws: ``TopologyError`` for a failed command (with every log), or when the nodes do
    ///   not agree in time.
    public func finishSlotMigration(_ migration: SlotMigration, timeout: Duration = .seconds(60)) async throws {
        let slot = String(migration.slot)
        while true {
            let reply = try RedisCLI.reply(port: migration.sourcePort, ["CLUSTER", "GETKEYSINSLOT", slot, "100"])
            let keys = (reply as? [Any] ?? []).map { "\($0)" }
            if keys.isEmpty { break }
            try moveKeys(keys, of: migration)
        }
        let others = try masterPorts().filter { $0 != migration.sourcePort && $0 != migration.targetPort }
        for port in [migration.targetPort, migration.sourcePort] + others {
            try command(port, ["CLUSTER", "SETSLOT", slot, "NODE", migration.targetID])
        }
        try await waitUntilHealthy(timeout: timeout)
        let owner = try masterPort(forSlot: migration.slot)
        guard owner == migration.targetPort else {
            throw TopologyError("slot \(slot) ended on port \(owner), not \(migration.targetPort)", logs: logs())
        }
    }

    /// Moves `count` slots from the master on `sourcePort` to the one on `targetPort` with
    /// `redis-cli --cluster reshard`, and waits until every node agrees.
    /// - Returns: the slots that moved, in order.
    /// - Throws: ``TopologyError`` with redis-cli's output and every log when it fails, or when
    ///   the nodes do not agree in time.
    @discardableResult
    public func reshard(slots count: Int, from sourcePort: Int, to targetPort: Int, timeout: Duration = .seconds(60))
        async throws -> [Int]
    {
        let before = try nodes()
        guard let source = before.first(where: { $0.port == sourcePort && $0.role == .master }),
            let target = before.first(where: { $0.port == targetPort && $0.role == .master })
        else {
            throw TopologyError("reshard needs two masters; \(sourcePort) and \(targetPort) are not", logs: logs())
        }
        let result = try InstalledProgram.run(
            "redis-cli",
            [
                "--cluster", "reshard", "127.0.0.1:\(sourcePort)", "--cluster-from", source.id, "--cluster-to",
                target.id, "--cluster-slots", String(count), "--cluster-yes",
            ], timeout: 120)
        guard result.succeeded else {
            throw TopologyError(
                "`redis-cli --cluster reshard` failed (exit \(result.status)):\n\(result.output)", logs: logs())
        }
        try await waitUntilHealthy(timeout: timeout)
        let after = try nodes().first { $0.port == targetPort }?.slots ?? []
        return source.slots.flatMap { Array($0) }.filter { slot in after.contains { $0.contains(slot) } }
    }

    /// `MIGRATE`s `keys` from the migration's source to its target in one command; keys the
    /// source does not have are skipped (`NOKEY`).
    private func moveKeys(_ keys: [String], of migration: SlotMigration) throws {
        guard !keys.isEmpty else { return }
        try command(
            migration.sourcePort,
            ["MIGRATE", "127.0.0.1", String(migration.targetPort), "", "0", "10000", "KEYS"] + keys)
    }

    /// Sends `arguments` to the node on `port`; an error reply is a ``TopologyError`` with every log.
    private func command(_ port: Int, _ arguments: [String]) throws {
        do {
            _ = try RedisCLI.reply(port: port, arguments)
        } catch let error as TopologyError {
            throw TopologyError(error.description, logs: logs())
        }
    }
}
