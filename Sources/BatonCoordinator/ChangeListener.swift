import BatonRedis
import Foundation

/// Listens on every service's change channel (`PSUBSCRIBE prefix:*:changed`) on its own thread
/// and connection, so that a replica learns at once when another one refreshed.
final class ChangeListener: @unchecked Sendable {
    enum Event: Sendable {
        /// A service's record was written with this version.
        case changed(service: String, version: Int64?)
        /// The subscription was (re-)established: messages may have been missed; re-read everything.
        case resubscribed
    }

    private let endpoint: RedisEndpoint
    private let options: RedisConnectionOptions
    private let prefix: String
    private let stopped = StopFlag()

    init(endpoint: RedisEndpoint, options: RedisConnectionOptions, prefix: String) {
        self.endpoint = endpoint
        self.options = options
        self.prefix = prefix
    }

    func start(deliver: @escaping @Sendable (Event) -> Void, onError: @escaping @Sendable (any Error) -> Void) {
        let pattern = prefix + ":*:changed"
        let thread = Thread { [self] in
            var subscription: RedisSubscription?
            while !stopped.isSet {
                do {
                    if subscription == nil {
                        let fresh = try RedisSubscription(endpoint: endpoint, options: options)
                        try fresh.psubscribe([pattern])
                        subscription = fresh
                        deliver(.resubscribed)
                    }
                    switch try subscription?.next(timeout: .milliseconds(500)) {
                    case .message(let message)?:
                        if let service = Self.service(in: message.channel, prefix: prefix) {
                            deliver(.changed(service: service, version: Int64(message.text)))
                        }
                    case .resubscribed?:
                        deliver(.resubscribed)
                    case nil:
                        break
                    }
                } catch {
                    subscription = nil
                    onError(error)
                    Thread.sleep(forTimeInterval: 0.5)
                }
            }
        }
        thread.name = "baton-change-listener"
        thread.start()
    }

    func stop() {
        stopped.set()
    }

    /// `prefix:{svc}:changed` → `svc`.
    static func service(in channel: String, prefix: String) -> String? {
        let head = prefix + ":{"
        let tail = "}:changed"
        guard channel.hasPrefix(head), channel.hasSuffix(tail), channel.count > head.count + tail.count else { return nil }
        return String(channel.dropFirst(head.count).dropLast(tail.count))
    }
}
