import BatonTestSupport
import Foundation
import XCTest

/// The shipped Prometheus files (Deploy/prometheus/) pass the real `promtool`: the rules load,
/// their unit tests (series written by hand that fire and do not fire each alert) pass, and the
/// example scrape configuration is valid. `make check-deploy` runs the same commands.
final class PrometheusRulesTests: XCTestCase {
    private var folder: URL { ShippedDeployment.repositoryRoot.appendingPathComponent("Deploy/prometheus") }

    private func promtool(_ arguments: [String]) throws -> ProgramOutput {
        do {
            _ = try InstalledProgram.path("promtool")
        } catch {
            throw TopologyError(
                "promtool is not installed: these tests need it. Install it with `apt-get install -y prometheus` (or run `make deps`)."
            )
        }
        return try InstalledProgram.run("promtool", arguments, timeout: 60)
    }

    func testAlertRulesLoad() throws {
        let result = try promtool(["check", "rules", folder.appendingPathComponent("baton-alerts.yml").path])
        XCTAssertTrue(result.succeeded, result.output)
        XCTAssertTrue(result.output.contains("SUCCESS: 7 rules found"), result.output)
    }

    func testAlertRulesPassTheirUnitTests() throws {
        let result = try promtool(["test", "rules", folder.appendingPathComponent("baton-alerts.test.yml").path])
        XCTAssertTrue(result.succeeded, result.output)
        XCTAssertTrue(result.output.contains("SUCCESS"), result.output)
    }

    func testExampleScrapeConfigurationIsValid() throws {
        let result = try promtool(["check", "config", folder.appendingPathComponent("prometheus.yml").path])
        XCTAssertTrue(result.succeeded, result.output)
        XCTAssertTrue(result.output.contains("SUCCESS: 1 rule files found"), result.output)
        // The rules select `up{job="baton"}`: the example must scrape under that name.
        let text = try String(contentsOf: folder.appendingPathComponent("prometheus.yml"), encoding: .utf8)
        XCTAssertTrue(text.contains("- job_name: baton\n"), "prometheus.yml must scrape Baton as job \"baton\"")
    }
}
