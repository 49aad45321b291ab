import Foundation
import XCTest

@testable import BatonConfig

/// The `alerts` object: defaults, accepted values, the URL rules, the signing secret, and every
/// kind of bad value reported with its key (and a did-you-mean for a misspelt one).
final class AlertsConfigurationTests: XCTestCase {
    private func document(_ alerts: String) -> String {
        """
        {
          "alerts": \(alerts),
          "services": {"my-api": {"token_url": "https://auth.example.com/oauth/token", "client_id": "abc"}}
        }
        """
    }

    private func parse(_ alerts: String, environment: [String: String] = ["HOOK_KEY": "k3y"]) throws
        -> BatonConfiguration
    {
        try BatonConfiguration.parse(
            Array(document(alerts).utf8), environment: withTestKeyring(environment), baseDirectory: "/tmp")
    }

    private func problems(_ alerts: String, file: StaticString = #filePath, line: UInt = #line) -> [String] {
        configurationError(alerts, file: file, line: line) { try parse(alerts) }?.problems.map(\.description) ?? []
    }

    func testNoAlertsByDefault() throws {
        let configuration = try BatonConfiguration.parse(
            Array(#"{"services": {"a": {"token_url": "https://x.example/t", "client_id": "c"}}}"#.utf8),
            environment: withTestKeyring([:]), baseDirectory: "/tmp")
        XCTAssertNil(configuration.alerts)
    }

    func testDefaultsAndValues() throws {
        let minimal = try XCTUnwrap(
            parse(#"{"webhook_url": "https://hooks.example.com/baton", "secret_env": "HOOK_KEY"}"#).alerts)
        XCTAssertEqual(minimal.webhookURL.absoluteString, "https://hooks.example.com/baton")
        XCTAssertEqual(minimal.secret?.reveal(), "k3y")
        XCTAssertEqual(minimal.refreshFailingAfter, 3)
        XCTAssertEqual(minimal.timeout, .seconds(10))
        let tuned = try XCTUnwrap(
            parse(
                #"{"webhook_url": "http://127.0.0.1:8080/x", "secret_env": "HOOK_KEY", "refresh_failing_after": 5, "timeout": "2s"}"#
            ).alerts)
        XCTAssertEqual(tuned.refreshFailingAfter, 5)
        XCTAssertEqual(tuned.timeout, .seconds(2))
    }

    func testUnsignedWebhooksWarn() throws {
        let configuration = try parse(#"{"webhook_url": "https://hooks.example.com/baton"}"#)
        XCTAssertNil(configuration.alerts?.secret)
        XCTAssertTrue(
            configuration.warnings.contains { $0.contains("webhooks are sent unsigned") }, "\(configuration.warnings)")
    }

    func testPlainHTTPNeedsLoopbackOrAnExplicitAllow() throws {
        XCTAssertEqual(
            problems(#"{"webhook_url": "http://hooks.example.com/T0/B1/sEcReT", "secret_env": "HOOK_KEY"}"#),
            [
                "alerts.webhook_url: http:// sends alerts and their signatures in clear text: use https, or set \"allow_insecure_http\": true in alerts if you really must"
            ])
        let allowed = try parse(
            #"{"webhook_url": "http://hooks.example.com/x", "secret_env": "HOOK_KEY", "allow_insecure_http": true}"#)
        XCTAssertEqual(allowed.alerts?.allowInsecureHTTP, true)
    }

    func testBadValuesNameTheirKeysAndNeverQuoteTheURL() {
        let found = problems(
            #"{"webhook_url": "ftp://hooks.example.com/sEcReT", "secret_env": "UNSET_VARIABLE", "refresh_failing_after": 0, "timeout": 10}"#
        )
        XCTAssertEqual(
            found,
            [
                "alerts.webhook_url: the scheme 'ftp' is not supported: use https",
                "alerts.secret_env: the environment variable UNSET_VARIABLE is not set (or empty): export it before starting Baton",
                "alerts.refresh_failing_after: must be a whole number from 1 to 1000, not 0",
                "alerts.timeout: 10 has no unit: write a string with one, as in \"10s\"",
            ])
        XCTAssertFalse(found.joined().contains("sEcReT"))
        XCTAssertEqual(
            problems(#"{"secret_env": "HOOK_KEY"}"#),
            ["alerts.webhook_url: missing: the URL to POST alerts to, e.g. https://hooks.example.com/baton"])
        XCTAssertEqual(
            problems(#""https://hooks.example.com""#),
            ["alerts: must be an object such as {\"webhook_url\": \"https://...\"}, not a string"])
    }

    func testUnknownKeysGetADidYouMean() {
        XCTAssertEqual(
            problems(#"{"webhook_url": "https://h.example/x", "secret_env": "HOOK_KEY", "refresh_failing_afer": 2}"#),
            ["alerts.refresh_failing_afer: unknown key at line 2 (did you mean 'refresh_failing_after'?)"])
    }
}
