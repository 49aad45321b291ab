import BatonRedis
import BatonSupport
import BatonTokens

/// Wakes token API requests that wait for a service's record, through one subscription for all of
/// them (`PSUBSCRIBE prefix:*:changed` on its own thread and connection): a waiting request holds
/// a mailbox, not a thread nor a connection.
final class TokenChangeWaiters: Sendable {
    /// One waiting request's wake-up: signalled when its service's record may have changed.
    struct Waiter: Sendable {
        let wakeup: Mailbox<Void>
        fileprivate let channel: String
        fileprivate let id: UInt64
    }

    private struct Registry: Sendable {
        var nextID: UInt64 = 0
        /// Channel → waiter id → wake-up.
        var waiters: [String: [UInt64: Mailbox<Void>]] = [:]
    }

    private let registry = LockedBox(Registry())
    private let loop: ReconnectingLoop<RedisSubscription>

    /// Starts the subscription (it reconnects on its own after failures).
    init(client: RedisClient, prefix: String) {
        let registry = self.registry
        loop = ReconnectingLoop(
            name: "baton-token-api-changes", endpoint: client.endpoint, options: client.options.connection,
            patterns: [prefix + ":*:changed"], pollInterval: .milliseconds(500),
            onEvent: { event in
                let wakeups: [Mailbox<Void>] = registry.withLockedValue { registry in
                    switch event {
                    case .message(let message): return Array((registry.waiters[message.channel] ?? [:]).values)
                    // Messages may have been missed while away: everyone looks again.
                    case .resubscribed: return registry.waiters.values.flatMap(\.values)
                    }
                }
                wakeups.forEach { $0.signal() }
            })
        loop.start()
    }

    /// Registers a waiter for `keys`' change channel. Register before reading the record, so that
    /// a change between the read and the wait is not missed; ``remove(_:)`` it when done.
    func add(_ keys: TokenKeys) -> Waiter {
        let wakeup = Mailbox<Void>()
        let id = registry.withLockedValue { registry in
            registry.nextID += 1
            registry.waiters[keys.changedChannel, default: [:]][registry.nextID] = wakeup
            return registry.nextID
        }
        return Waiter(wakeup: wakeup, channel: keys.changedChannel, id: id)
    }

    /// Forgets `waiter`.
    func remove(_ waiter: Waiter) {
        registry.withLockedValue { registry in
            registry.waiters[waiter.channel]?[waiter.id] = nil
            if registry.waiters[waiter.channel]?.isEmpty == true { registry.waiters[waiter.channel] = nil }
        }
    }

    /// Stops the subscription.
    func stop() { loop.stop() }
}
