/// A callback told the round trip of every request on a client's shared pipelined connection (the
/// path of ordinary commands, pipelines and scripts), for a latency metric. BatonRedis knows
/// nothing of metrics: `baton serve` turns these calls into `baton_redis_command_duration_seconds`.
///
/// It runs on the connection's I/O thread after the replies are handed over, so it must be quick
/// and must not block (recording into a histogram is). Two observers are equal when they are the
/// same instance, so ``RedisClientOptions`` stays `Hashable`.
public struct RedisCommandObserver: Sendable, Hashable {
    private final class Callback: Sendable {
        let observe: @Sendable (String, Duration) -> Void
        init(_ observe: @escaping @Sendable (String, Duration) -> Void) { self.observe = observe }
    }

    private let callback: Callback

    /// Creates an observer.
    /// - Parameter observe: called with the request's (first) command name and the time from its
    ///   write to its last reply. Requests that fail (connection lost, timeout) are not reported.
    public init(_ observe: @escaping @Sendable (_ command: String, _ roundTrip: Duration) -> Void) {
        callback = Callback(observe)
    }

    func callAsFunction(_ command: String, _ roundTrip: Duration) {
        callback.observe(command, roundTrip)
    }

    public static func == (left: RedisCommandObserver, right: RedisCommandObserver) -> Bool {
        left.callback === right.callback
    }

    public func hash(into hasher: inout Hasher) {
        hasher.combine(ObjectIdentifier(callback))
    }
}
