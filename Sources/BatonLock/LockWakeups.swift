import BatonRedis
import BatonSupport
import Foundation

/// Why a waiting acquirer woke up.
enum WakeEvent: Sendable, Equatable {
    /// The releasing holder handed the lock to this waiter, with this fence.
    case granted(FencingToken)
    /// The pub/sub connection was re-established: grants may have been missed, so look again.
    case reconnected
    /// The wait's own deadline passed (the fallback: re-check the lock).
    case timedOut
    /// The waiting task was cancelled.
    case cancelled
}

/// One process's listener for lock grants: a single pub/sub connection, on its own thread,
/// subscribed to every lock's wake channel under one prefix (`PSUBSCRIBE prefix:*:wake`), that
/// routes each `grant <fence> <owner>` message to the waiter with that owner token.
///
/// One connection serves any number of waiting tasks, so waiting never ties up pooled
/// connections with blocking commands.
final class LockWakeups: Sendable {
    private let waiters: LockedBox<[String: Waiter]>
    private let loop: ReconnectingLoop<RedisSubscription>

    init(endpoint: RedisEndpoint, connectionOptions: RedisConnectionOptions, prefix: String) {
        let waiters = LockedBox([String: Waiter]())
        self.waiters = waiters
        loop = ReconnectingLoop(
            name: "baton-lock-wakeups", endpoint: endpoint, options: connectionOptions,
            patterns: [Self.escapeGlob(prefix) + ":*:wake"],
            onEvent: { event in
                switch event {
                case .message(let message):
                    Self.route(message, to: waiters)
                case .resubscribed:
                    // Grants may have been missed: every waiter looks again. Waiters fall back to
                    // their own timers while the connection is down.
                    waiters.withLockedValue { Array($0.values) }.forEach { $0.post(.reconnected) }
                }
            }
        )
    }

    /// Starts the listener thread if needed and returns once it is subscribed, so that no grant
    /// published after this call can be missed.
    func ensureListening() async throws {
        loop.start()
        try await loop.waitUntilConnected()
    }

    /// Registers a waiter before it queues, so its grant finds it.
    func register(owner: String) -> Waiter {
        // A grant matters; repeated reconnect notices do not.
        let waiter = Waiter(collapsing: { $0 == .reconnected && $1 == .reconnected })
        waiters.withLockedValue { $0[owner] = waiter }
        return waiter
    }

    func unregister(owner: String) {
        waiters.withLockedValue { $0[owner] = nil }
    }

    /// Stops the listener thread (within a quarter second).
    func stop() {
        loop.stop()
    }

    private static func route(_ message: PubSubMessage, to waiters: LockedBox<[String: Waiter]>) {
        // "grant <fence> <owner>": the owner token may itself contain spaces-free colons only.
        let parts = message.text.split(separator: " ", maxSplits: 2)
        guard parts.count == 3, parts[0] == "grant", let fence = Int64(parts[1]) else { return }
        waiters.withLockedValue { $0[String(parts[2])] }?.post(.granted(FencingToken(fence)))
    }

    private static func escapeGlob(_ text: String) -> String {
        var escaped = ""
        for character in text {
            if "*?[]\\".contains(character) { escaped.append("\\") }
            escaped.append(character)
        }
        return escaped
    }
}

/// One waiting acquirer's mailbox. Events that arrive while it is not waiting are kept, so a
/// grant that lands between two waits is not lost.
typealias Waiter = Mailbox<WakeEvent>

extension Mailbox<WakeEvent> {
    /// Waits for the next event, at most `timeout`.
    func wait(upTo timeout: Duration) async -> WakeEvent {
        switch await next(timeout: timeout) {
        case .event(let event): return event
        case .timedOut, .closed: return .timedOut
        case .cancelled: return .cancelled
        }
    }
}
