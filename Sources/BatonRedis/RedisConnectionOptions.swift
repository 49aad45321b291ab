import BatonSupport

/// How a single connection connects, times out and reconnects.
public struct RedisConnectionOptions: Sendable, Hashable {
    /// How long to wait for the TCP or Unix connect to complete. Default: 2 seconds.
    public var connectTimeout: Duration
    /// How long to wait for a reply before giving up and dropping the connection. `nil` waits
    /// forever. Default: 5 seconds. Blocking commands pass a longer per-call timeout.
    public var commandTimeout: Duration?
    /// Whether TCP keepalive is enabled (hiredis probes every 15 s). Default: `true`.
    public var keepAlive: Bool
    /// How reconnects after a dropped connection are paced. Default: ``ReconnectPolicy/default``.
    public var reconnect: ReconnectPolicy

    /// Creates options; every parameter has the default documented on its property.
    public init(
        connectTimeout: Duration = .seconds(2),
        commandTimeout: Duration? = .seconds(5),
        keepAlive: Bool = true,
        reconnect: ReconnectPolicy = .default
    ) {
        self.connectTimeout = connectTimeout
        self.commandTimeout = commandTimeout
        self.keepAlive = keepAlive
        self.reconnect = reconnect
    }
}

/// Jittered exponential backoff for reconnecting, bounded in total time.
///
/// Only reconnecting is retried, never a command: a command whose connection broke in flight
/// surfaces ``RedisError/connectionLost(address:command:reason:)``.
public struct ReconnectPolicy: Sendable, Hashable {
    /// The first pause after a failed connect. Default: 20 ms.
    public var initialDelay: Duration
    /// The longest single pause. Default: 1 second.
    public var maxDelay: Duration
    /// How long one call keeps trying to reconnect before it gives up with the last connect error.
    /// Zero makes a single attempt. Default: 2 seconds.
    public var giveUpAfter: Duration

    /// Creates a policy; every parameter has the default documented on its property.
    public init(
        initialDelay: Duration = .milliseconds(20), maxDelay: Duration = .seconds(1),
        giveUpAfter: Duration = .seconds(2)
    ) {
        self.initialDelay = initialDelay
        self.maxDelay = maxDelay
        self.giveUpAfter = giveUpAfter
    }

    /// 20 ms doubling up to 1 s, giving up after 2 s.
    public static let `default` = ReconnectPolicy()
    /// One connect attempt, no retry.
    public static let never = ReconnectPolicy(giveUpAfter: .zero)

    /// The pause before attempt `attempt` (0-based): a ``Backoff`` from `initialDelay` to `maxDelay`.
    public func delay(beforeAttempt attempt: Int) -> Duration {
        Backoff(base: initialDelay, cap: maxDelay).delay(beforeAttempt: attempt)
    }
}
