import BatonSupport
import Foundation

/// A thread of its own that owns one dedicated Redis connection and runs a blocking step on it
/// again and again until ``stop()``: the one listener loop in Baton (lock grants, change
/// notifications, `baton watch`, the forced-refresh request consumer).
///
/// Each turn connects when there is no connection (`connect`, then `onConnect`), then runs `step`,
/// which must return within about a second so a stop is noticed. When either throws, the
/// connection is dropped, `onError` hears why, and the loop pauses for a full-jitter ``Backoff``
/// (cut short by ``stop()``) before connecting afresh. A step that returns resets the backoff.
///
/// The connection never leaves the loop's thread, which is what hiredis asks: one owner at a time.
/// A Sentinel-aware reconnect or a reconnect metric belongs here, once, for every listener.
public final class ReconnectingLoop<Connection>: Sendable {
    /// 100 ms doubling to 1 s: a listener is back within a second of Redis.
    public static var defaultBackoff: Backoff { Backoff(base: .milliseconds(100), cap: .seconds(1)) }

    private enum Phase: Sendable { case idle, running, stopped }

    private struct State: Sendable {
        var phase = Phase.idle
        var everConnected = false
        /// Tasks in ``waitUntilConnected()``.
        var readiness: [CheckedContinuation<Void, any Error>] = []
    }

    private let name: String
    private let backoff: Backoff
    private let connect: @Sendable () throws -> Connection
    private let step: @Sendable (Connection) throws -> Void
    private let onConnect: @Sendable (Connection) throws -> Void
    private let onError: @Sendable (any Error) -> Void
    private let state = LockedBox(State())
    private let stopFlag = StopFlag()
    /// Closed when the thread has left its last step and dropped its connection.
    private let exited = Mailbox<Void>()

    /// Creates a loop; nothing runs until ``start()``.
    /// - Parameters:
    ///   - name: the thread's name (`baton-...`).
    ///   - backoff: the pause between failed turns. Default: ``defaultBackoff``.
    ///   - connect: opens a fresh dedicated connection (and subscribes, for pub/sub).
    ///   - onConnect: runs on the loop's thread after each successful `connect`, before the next step.
    ///   - step: one bounded blocking wait on the connection.
    ///   - onError: hears every failure of `connect`, `onConnect` or `step`; the loop carries on.
    public init(
        name: String,
        backoff: Backoff = defaultBackoff,
        connect: @escaping @Sendable () throws -> Connection,
        onConnect: @escaping @Sendable (Connection) throws -> Void = { _ in },
        step: @escaping @Sendable (Connection) throws -> Void,
        onError: @escaping @Sendable (any Error) -> Void = { _ in }
    ) {
        self.name = name
        self.backoff = backoff
        self.connect = connect
        self.onConnect = onConnect
        self.step = step
        self.onError = onError
    }

    /// Starts the thread. Idempotent; does nothing once stopped.
    public func start() {
        let starts = state.withLockedValue { state in
            guard state.phase == .idle else { return false }
            state.phase = .running
            return true
        }
        guard starts else { return }
        let thread = Thread { [self] in run() }
        thread.name = name
        thread.start()
    }

    /// Returns once the loop has connected at least once (at once if it already has), so that
    /// nothing published after this call is missed.
    /// - Throws: the error of a failed connect while no connect has succeeded yet (the loop keeps
    ///   trying for later callers), or ``RedisError/closed`` once stopped.
    public func waitUntilConnected() async throws {
        try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
            let immediate: Result<Void, any Error>? = state.withLockedValue { state in
                if state.phase == .stopped { return .failure(RedisError.closed) }
                if state.everConnected { return .success(()) }
                state.readiness.append(continuation)
                return nil
            }
            if let immediate { continuation.resume(with: immediate) }
        }
    }

    /// Asks the thread to end: it notices within one step (or at once, while pausing). Tasks in
    /// ``waitUntilConnected()`` fail with ``RedisError/closed``.
    public func stop() {
        stopFlag.set()
        let (pending, wasRunning) = state.withLockedValue { state in
            defer {
                state.readiness = []
                state.phase = .stopped
            }
            return (state.readiness, state.phase == .running)
        }
        if !wasRunning { exited.close() }
        pending.forEach { $0.resume(throwing: RedisError.closed) }
    }

    /// Stops the loop and waits up to `timeout` until its thread has left its last step.
    /// - Returns: whether the thread ended in time (`true` if it never started).
    @discardableResult
    public func stop(waitingUpTo timeout: Duration) async -> Bool {
        stop()
        if case .closed = await exited.next(timeout: timeout) { return true }
        return false
    }

    private func run() {
        var connection: Connection?
        var backoff = self.backoff
        while !stopFlag.isSet {
            do {
                if connection == nil {
                    let fresh = try connect()
                    connection = fresh
                    becameReady(nil)
                    try onConnect(fresh)
                }
                if let connection { try step(connection) }
                backoff.reset()
            } catch {
                connection = nil
                becameReady(error)
                onError(error)
                stopFlag.sleep(for: backoff.next())
            }
        }
        connection = nil  // freed on this thread, before anyone hears that it ended
        exited.close()
    }

    /// Resumes the tasks waiting for a connection: with success, or with the connect error.
    private func becameReady(_ error: (any Error)?) {
        let pending = state.withLockedValue { state in
            if error == nil { state.everConnected = true }
            defer { state.readiness = [] }
            return state.readiness
        }
        for continuation in pending {
            if let error { continuation.resume(throwing: error) } else { continuation.resume() }
        }
    }
}
