import BatonSupport
import Foundation

/// The `alerts` object (``AlertsConfiguration``).
extension ConfigurationValidator {
    static let alertKeys = [
        "webhook_url", "secret_env", "secret_file", "refresh_failing_after", "timeout", "allow_insecure_http",
    ]

    /// Reads `alerts`; `nil` when it is absent (or wrong: the problem is recorded). Adds a warning to
    /// `warnings` when the webhooks would go unsigned.
    mutating func alerts(_ value: JSONValue?, warnings: inout [String]) -> AlertsConfiguration? {
        guard let value else { return nil }
        guard case .object(let members) = value else {
            problem("alerts", "must be an object such as {\"webhook_url\": \"https://...\"}, not \(value.typeName)")
            return nil
        }
        let fields = checkedFields(members, known: Self.alertKeys, path: "alerts")
        let allowInsecure = boolean(fields["allow_insecure_http"], "alerts.allow_insecure_http") ?? false
        let url = webhookURL(fields["webhook_url"], allowInsecure: allowInsecure)
        let (_, secret) = secretSource(fields, prefix: "secret", path: "alerts")
        let failingAfter =
            integer(fields["refresh_failing_after"], "alerts.refresh_failing_after", range: 1...1000) ?? 3
        let timeout = duration(fields["timeout"], "alerts.timeout") ?? .seconds(10)
        if timeout > .seconds(120) {
            problem("alerts.timeout", "must be at most 120s: a delivery attempt holds a thread")
        }
        if fields["secret_env"] == nil && fields["secret_file"] == nil {
            warnings.append(
                "alerts has no secret_env or secret_file: webhooks are sent unsigned, so a receiver cannot tell them from forgeries"
            )
        }
        guard let url else { return nil }
        return AlertsConfiguration(
            webhookURL: url, secret: secret, refreshFailingAfter: failingAfter, timeout: timeout,
            allowInsecureHTTP: allowInsecure)
    }

    /// `alerts.webhook_url`: https, or http on loopback or with `allow_insecure_http`. Never quoted
    /// in a problem: such URLs often carry a credential in their path or query.
    private mutating func webhookURL(_ value: JSONValue?, allowInsecure: Bool) -> URL? {
        let path = "alerts.webhook_url"
        guard let value else {
            problem(path, "missing: the URL to POST alerts to, e.g. https://hooks.example.com/baton")
            return nil
        }
        guard let text = string(value, path) else { return nil }
        guard let url = URL(string: text), let scheme = url.scheme?.lowercased(), let host = url.host, !host.isEmpty
        else {
            problem(path, "not an absolute URL: use one such as https://hooks.example.com/baton")
            return nil
        }
        switch scheme {
        case "https":
            return url
        case "http" where allowInsecure || HostNames.isLoopback(host):
            return url
        case "http":
            problem(
                path,
                "http:// sends alerts and their signatures in clear text: use https, or set \"allow_insecure_http\": true in alerts if you really must"
            )
            return nil
        default:
            problem(path, "the scheme '\(scheme)' is not supported: use https")
            return nil
        }
    }
}
