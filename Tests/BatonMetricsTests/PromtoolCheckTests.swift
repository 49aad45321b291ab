import BatonMetrics
import Foundation
import XCTest

/// `promtool check metrics` (Debian's `prometheus` package) on the text of a registry holding every
/// Baton metric, each populated: the exposition as Prometheus's own linter reads it.
final class PromtoolCheckTests: XCTestCase {
    func testEveryBatonMetricPassesPromtoolCheckMetrics() throws {
        let metrics = ReplicaMetrics(version: "1.2.3-test")
        metrics.prepare(services: ["my-api", "other \"api\""])
        metrics.countRefresh(service: "my-api", result: .refreshed, duration: .milliseconds(120))
        metrics.countRefresh(service: "my-api", result: .invalidGrant, duration: .milliseconds(80))
        metrics.providerErrors.increment("my-api", "invalid_grant")
        metrics.countForcedRequest(.taken)
        metrics.countForcedRequest(.answered)
        metrics.lockWait.observe(Duration.milliseconds(3))
        metrics.redisCommandDuration.observe(Duration.microseconds(180))
        let fleet = FleetState(
            services: ServiceStatus.allCases.enumerated().map { index, status in
                FleetState.Service(
                    name: "svc-\(status.rawValue)", status: status,
                    expiresAt: index % 2 == 0 ? 1_764_000_000_000 + Int64(index) : nil, version: Int64(index))
            }, pendingRequests: 3)
        let text = metrics.registry.exposition(adding: fleet.families() + [FleetState.redisUp(true)])

        for name in [
            MetricName.refreshes, MetricName.refreshDuration, MetricName.providerErrors, MetricName.tokenExpiry,
            MetricName.tokenVersion, MetricName.serviceStatus, MetricName.forcedRequests, MetricName.requestsPending,
            MetricName.lockWait, MetricName.redisUp, MetricName.redisCommandDuration, MetricName.buildInfo,
            "process_resident_memory_bytes", "process_cpu_seconds_total", "process_open_fds", "process_max_fds",
            "process_start_time_seconds", "process_virtual_memory_bytes",
        ] {
            XCTAssertTrue(text.contains("# TYPE \(name) "), "\(name) missing from:\n\(text)")
        }
        XCTAssertTrue(text.contains("baton_build_info{version=\"1.2.3-test\"} 1\n"), text)

        let (status, output) = try Self.promtool(["check", "metrics"], input: text)
        XCTAssertEqual(status, 0, "promtool check metrics failed:\n\(output)\n--- text:\n\(text)")
        XCTAssertFalse(output.contains("error"), output)
    }

    /// A deliberately broken text must fail, so that the check above can fail at all.
    func testPromtoolRejectsABrokenExposition() throws {
        let broken = "# TYPE x_total counter\nx_total{a=\"unterminated} 1\n"
        let (status, output) = try Self.promtool(["check", "metrics"], input: broken)
        XCTAssertNotEqual(status, 0, output)
    }

    /// Runs promtool with `input` on standard input; skips when it is not installed (CI installs it).
    static func promtool(_ arguments: [String], input: String) throws -> (Int32, String) {
        let path = "/usr/bin/promtool"
        guard FileManager.default.isExecutableFile(atPath: path) else {
            throw XCTSkip("promtool is not installed: `apt-get install -y prometheus` (CI installs it)")
        }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: path)
        process.arguments = arguments
        let stdin = Pipe()
        let stdout = Pipe()
        process.standardInput = stdin
        process.standardOutput = stdout
        process.standardError = stdout
        try process.run()
        // Read while writing would be needed for outputs beyond a pipe buffer; promtool's is short.
        stdin.fileHandleForWriting.write(Data(input.utf8))
        try stdin.fileHandleForWriting.close()
        let output = stdout.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return (process.terminationStatus, String(decoding: output, as: UTF8.self))
    }
}
