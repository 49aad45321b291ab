import BatonRedis
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
final class LockWakeups: @unchecked Sendable {
    private let endpoint: RedisEndpoint
    private let connectionOptions: RedisConnectionOptions
    private let pattern: String
    private let lock = NSLock()
    // Guarded by `lock`:
    private var waiters: [String: Waiter] = [:]
    private var state: State = .idle
    private var readiness: [CheckedContinuation<Void, any Error>] = []

    private enum State { case idle, starting, running, stopped }

    init(endpoint: RedisEndpoint, connectionOptions: RedisConnectionOptions, prefix: String) {
        self.endpoint = endpoint
        self.connectionOptions = connectionOptions
        self.pattern = Self.escapeGlob(prefix) + ":*:wake"
    }

    /// Starts the listener thread if needed and returns once it is subscribed, so that no grant
    /// published after this call can be missed.
    func ensureListening() async throws {
        try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
            lock.lock()
            switch state {
            case .running:
                lock.unlock()
                continuation.resume()
            case .stopped:
                lock.unlock()
                continuation.resume(throwing: RedisError.closed)
            case .starting:
                readiness.append(continuation)
                lock.unlock()
            case .idle:
                state = .starting
                readiness.append(continuation)
                lock.unlock()
                let thread = Thread { [self] in listen() }
                thread.name = "baton-lock-wakeups"
                thread.start()
            }
        }
    }

    /// Registers a waiter before it queues, so its grant finds it.
    func register(owner: String) -> Waiter {
        let waiter = Waiter()
        lock.lock()
        waiters[owner] = waiter
        lock.unlock()
        return waiter
    }

    func unregister(owner: String) {
        lock.lock()
        waiters[owner] = nil
        lock.unlock()
    }

    /// Stops the listener thread (within a quarter second).
    func stop() {
        lock.lock()
        let pending = readiness
        readiness = []
        state = .stopped
        lock.unlock()
        pending.forEach { $0.resume(throwing: RedisError.closed) }
    }

    private var isStopped: Bool {
        lock.lock()
        defer { lock.unlock() }
        return state == .stopped
    }

    private func listen() {
        var subscription: RedisSubscription?
        while !isStopped {
            do {
                if subscription == nil {
                    let fresh = try RedisSubscription(endpoint: endpoint, options: connectionOptions)
                    try fresh.psubscribe([pattern])
                    subscription = fresh
                    becameReady(nil)
                    broadcast(.reconnected)
                }
                switch try subscription?.next(timeout: .milliseconds(250)) {
                case .message(let message)?:
                    route(message)
                case .resubscribed?:
                    broadcast(.reconnected)
                case nil:
                    break
                }
            } catch {
                subscription = nil
                becameReady(error)
                // Waiters fall back to their own timers meanwhile; try again shortly.
                Thread.sleep(forTimeInterval: 0.1)
            }
        }
    }

    /// Resumes whoever waits for the listener: with success, or (when it could not subscribe)
    /// with the error, leaving the thread to retry for later callers.
    private func becameReady(_ error: (any Error)?) {
        lock.lock()
        let pending = readiness
        readiness = []
        if error == nil && state == .starting { state = .running }
        lock.unlock()
        for continuation in pending {
            if let error { continuation.resume(throwing: error) } else { continuation.resume() }
        }
    }

    private func route(_ message: PubSubMessage) {
        // "grant <fence> <owner>": the owner token may itself contain spaces-free colons only.
        let parts = message.text.split(separator: " ", maxSplits: 2)
        guard parts.count == 3, parts[0] == "grant", let fence = Int64(parts[1]) else { return }
        lock.lock()
        let waiter = waiters[String(parts[2])]
        lock.unlock()
        waiter?.deliver(.granted(FencingToken(fence)))
    }

    private func broadcast(_ event: WakeEvent) {
        lock.lock()
        let everyone = Array(waiters.values)
        lock.unlock()
        everyone.forEach { $0.deliver(event) }
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
final class Waiter: @unchecked Sendable {
    private let lock = NSLock()
    private var pending: [WakeEvent] = []
    private var continuation: CheckedContinuation<WakeEvent, Never>?
    private var generation = 0

    func deliver(_ event: WakeEvent) {
        lock.lock()
        if let continuation {
            self.continuation = nil
            lock.unlock()
            continuation.resume(returning: event)
        } else {
            // A grant matters; repeated reconnect notices do not.
            if event != .reconnected || !pending.contains(.reconnected) { pending.append(event) }
            lock.unlock()
        }
    }

    /// Waits for the next event, at most `timeout`.
    func wait(upTo timeout: Duration) async -> WakeEvent {
        await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<WakeEvent, Never>) in
                lock.lock()
                if !pending.isEmpty {
                    let event = pending.removeFirst()
                    lock.unlock()
                    continuation.resume(returning: event)
                    return
                }
                generation += 1
                let myGeneration = generation
                self.continuation = continuation
                lock.unlock()
                DispatchQueue.global().asyncAfter(deadline: .now() + max(0, timeout.seconds)) { [weak self] in
                    self?.expire(generation: myGeneration)
                }
            }
        } onCancel: {
            deliver(.cancelled)
        }
    }

    private func expire(generation: Int) {
        lock.lock()
        guard generation == self.generation, let continuation else { lock.unlock(); return }
        self.continuation = nil
        lock.unlock()
        continuation.resume(returning: .timedOut)
    }
}
