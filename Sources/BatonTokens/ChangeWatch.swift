import BatonRedis
import BatonSupport

/// A subscription to one change channel on its own thread, signalling ``wakeup`` per message
/// (and per resubscription, when messages may have been missed).
final class ChangeWatch: Sendable {
    /// Signalled whenever the channel may have news.
    let wakeup: Mailbox<Void>
    private let loop: ReconnectingLoop<RedisSubscription>

    private init(endpoint: RedisEndpoint, options: RedisConnectionOptions, channel: String) {
        let wakeup = Mailbox<Void>()
        self.wakeup = wakeup
        loop = ReconnectingLoop(
            name: "baton-change-watch", endpoint: endpoint, options: options, channels: [channel],
            pollInterval: .milliseconds(200), onEvent: { _ in wakeup.signal() })
    }

    /// Subscribes to `channel` and returns once subscribed, so nothing published afterwards is missed.
    /// - Throws: ``RedisError`` when the first subscription fails.
    static func start(endpoint: RedisEndpoint, options: RedisConnectionOptions, channel: String) async throws
        -> ChangeWatch
    {
        let watch = ChangeWatch(endpoint: endpoint, options: options, channel: channel)
        watch.loop.start()
        do {
            try await watch.loop.waitUntilConnected()
        } catch {
            watch.stop()
            throw error
        }
        return watch
    }

    func stop() { loop.stop() }
}
