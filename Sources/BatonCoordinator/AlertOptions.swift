import BatonConfig

/// How `baton serve` sends alert webhooks (the configuration's `alerts`; see README "Webhooks").
public struct AlertOptions: Sendable {
    /// Where events are POSTed. Never logged (it may carry a credential).
    public var webhookURL: String
    /// The HMAC-SHA256 key of the `X-Baton-Signature` header; `nil` sends unsigned requests.
    public var secret: Secret?
    /// Consecutive failed refreshes (on one replica) that raise `refresh_failing`. Default: 3.
    public var refreshFailingAfter: Int
    /// One delivery attempt, connection included. Default: 10 s.
    public var timeout: Duration
    /// The first retry pause after a failed delivery; doubles per attempt, full jitter. Default: 1 s.
    public var retryBase: Duration
    /// The longest retry pause. Default: 60 s.
    public var retryCap: Duration
    /// How often each replica looks for events whose deliverer died. Default: 10 s.
    public var sweepInterval: Duration

    /// The claim's lease: the longest a deliverer may go without renewing it (a retry pause plus
    /// an attempt, and a margin). When its holder dies, another replica delivers after this.
    public var lease: Duration { retryCap + timeout + .seconds(15) }

    /// Creates options; the defaults are those documented on each property.
    public init(
        webhookURL: String, secret: Secret?, refreshFailingAfter: Int = 3, timeout: Duration = .seconds(10),
        retryBase: Duration = .seconds(1), retryCap: Duration = .seconds(60), sweepInterval: Duration = .seconds(10)
    ) {
        self.webhookURL = webhookURL
        self.secret = secret
        self.refreshFailingAfter = refreshFailingAfter
        self.timeout = timeout
        self.retryBase = retryBase
        self.retryCap = retryCap
        self.sweepInterval = sweepInterval
    }

    /// The options of a configuration's `alerts`.
    public init(_ configuration: AlertsConfiguration) {
        self.init(
            webhookURL: configuration.webhookURL.absoluteString, secret: configuration.secret,
            refreshFailingAfter: configuration.refreshFailingAfter, timeout: configuration.timeout)
    }
}
