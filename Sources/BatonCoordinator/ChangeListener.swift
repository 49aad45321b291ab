import BatonRedis
import BatonSupport
import Foundation

/// Listens on every service's change channel (`PSUBSCRIBE prefix:*:changed`) on its own thread
/// and connection, so that a replica learns at once when another one refreshed.
final class ChangeListener: Sendable {
    enum Event: Sendable {
        /// A service's record was written with this version.
        case changed(service: String, version: Int64?)
        /// The subscription was (re-)established: messages may have been missed; re-read everything.
        case resubscribed
    }

    private let endpoint: RedisEndpoint
    private let options: RedisConnectionOptions
    private let prefix: String
    private let loop = LockedBox<ReconnectingLoop<RedisSubscription>?>(nil)

    init(endpoint: RedisEndpoint, options: RedisConnectionOptions, prefix: String) {
        self.endpoint = endpoint
        self.options = options
        self.prefix = prefix
    }

    func start(deliver: @escaping @Sendable (Event) -> Void, onError: @escaping @Sendable (any Error) -> Void) {
        let prefix = self.prefix
        let loop = ReconnectingLoop(
            name: "baton-change-listener", endpoint: endpoint, options: options, patterns: [prefix + ":*:changed"],
            pollInterval: .milliseconds(500),
            onEvent: { event in
                switch event {
                case .message(let message):
                    if let service = Self.service(in: message.channel, prefix: prefix) {
                        deliver(.changed(service: service, version: Int64(message.text)))
                    }
                case .resubscribed:
                    deliver(.resubscribed)
                }
            },
            onError: onError
        )
        self.loop.withLockedValue { $0 = loop }
        loop.start()
    }

    func stop() {
        loop.withLockedValue { $0 }?.stop()
    }

    /// `prefix:{svc}:changed` → `svc`.
    static func service(in channel: String, prefix: String) -> String? {
        let head = prefix + ":{"
        let tail = "}:changed"
        guard channel.hasPrefix(head), channel.hasSuffix(tail), channel.count > head.count + tail.count else {
            return nil
        }
        return String(channel.dropFirst(head.count).dropLast(tail.count))
    }
}
