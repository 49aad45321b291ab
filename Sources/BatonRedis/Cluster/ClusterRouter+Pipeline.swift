extension ClusterRouter {
    /// One command of a pipeline that still waits for its reply.
    fileprivate struct Pending: Sendable {
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
    fileprivate struct RoundOutcome {
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
}
