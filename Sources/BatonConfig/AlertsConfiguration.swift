import Foundation

/// The configuration's `alerts` object: webhooks that `baton serve` POSTs when a credential needs a
/// human or stops refreshing, and when it is healthy again (see README "Webhooks").
///
/// ```json
/// "alerts": {"webhook_url": "https://hooks.example.com/baton", "secret_env": "BATON_WEBHOOK_SECRET",
///            "refresh_failing_after": 3, "timeout": "10s"}
/// ```
public struct AlertsConfiguration: Sendable {
    /// `webhook_url`: https, or http on loopback or with `allow_insecure_http`. Never logged or
    /// quoted in an error (a webhook URL often carries its own credential), only its host.
    public var webhookURL: URL
    /// The HMAC-SHA256 key from `secret_env` (an environment variable) or `secret_file`; `nil`
    /// sends webhooks unsigned (and `baton config check` warns).
    public var secret: Secret?
    /// `refresh_failing_after`: the consecutive failed refreshes (on one replica) that raise
    /// `refresh_failing`. Default: 3.
    public var refreshFailingAfter: Int
    /// `timeout`: one delivery attempt, connection included. Default: 10 s.
    public var timeout: Duration
    /// `allow_insecure_http`: accept an `http://` URL that is not on loopback. Default: `false`.
    public var allowInsecureHTTP: Bool

    /// Creates a configuration; the defaults are those documented on each property.
    public init(
        webhookURL: URL, secret: Secret? = nil, refreshFailingAfter: Int = 3, timeout: Duration = .seconds(10),
        allowInsecureHTTP: Bool = false
    ) {
        self.webhookURL = webhookURL
        self.secret = secret
        self.refreshFailingAfter = refreshFailingAfter
        self.timeout = timeout
        self.allowInsecureHTTP = allowInsecureHTTP
    }
}
