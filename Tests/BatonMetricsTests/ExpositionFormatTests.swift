import XCTest

@testable import BatonMetrics

final class ExpositionFormatTests: XCTestCase {
    func testLabelValuesAndHelpAreEscapedPerTheSpecification() {
        let counter = Counter(name: "odd_total", help: "Back\\slash and\nnew line \"kept\".", labelNames: ["path"])
        counter.increment("C:\\dir \"quoted\"\nnext")
        let text = ExpositionFormat.render(counter.collect())
        XCTAssertEqual(
            text,
            """
            # HELP odd_total Back\\\\slash and\\nnew line "kept".
            # TYPE odd_total counter
            odd_total{path="C:\\\\dir \\"quoted\\"\\nnext"} 1

            """)
    }

    func testHistogramBucketsAreCumulativeWithInfEqualToCount() {
        let histogram = Histogram(name: "wait_seconds", help: "Waits.", bounds: [0.1, 1, 2.5])
        for value in [0.05, 0.1, 0.5, 2, 7, 100] { histogram.observe(value) }
        let text = ExpositionFormat.render(histogram.collect())
        XCTAssertEqual(
            text,
            """
            # HELP wait_seconds Waits.
            # TYPE wait_seconds histogram
            wait_seconds_bucket{le="0.1"} 2
            wait_seconds_bucket{le="1"} 3
            wait_seconds_bucket{le="2.5"} 4
            wait_seconds_bucket{le="+Inf"} 6
            wait_seconds_sum 109.65
            wait_seconds_count 6

            """)
    }

    func testLabelledHistogramPutsLeLastAndDurationsInSeconds() {
        let histogram = Histogram(name: "call_seconds", help: "Calls.", labelNames: ["kind"], bounds: [0.001])
        histogram.observe(Duration.microseconds(500), "read")
        let lines = ExpositionFormat.render(histogram.collect()).split(separator: "\n")
        XCTAssertTrue(lines.contains("call_seconds_bucket{kind=\"read\",le=\"0.001\"} 1"), "\(lines)")
        XCTAssertTrue(lines.contains("call_seconds_bucket{kind=\"read\",le=\"+Inf\"} 1"), "\(lines)")
        XCTAssertTrue(lines.contains("call_seconds_sum{kind=\"read\"} 0.0005"), "\(lines)")
    }

    func testLabelsKeepDeclaredOrderAndSeriesAndFamiliesAreSorted() {
        let registry = MetricsRegistry()
        let counter = registry.register(Counter(name: "b_total", help: "B.", labelNames: ["zeta", "alpha"]))
        registry.register(Gauge(name: "a_value", help: "A.")).set(-2.5)
        counter.increment("z2", "a1")
        counter.increment("z1", "a9", by: 3)
        XCTAssertEqual(
            registry.exposition(),
            """
            # HELP a_value A.
            # TYPE a_value gauge
            a_value -2.5
            # HELP b_total B.
            # TYPE b_total counter
            b_total{zeta="z1",alpha="a9"} 3
            b_total{zeta="z2",alpha="a1"} 1

            """)
    }

    func testNumbersAreWrittenTheWayPrometheusReadsThem() {
        XCTAssertEqual(ExpositionFormat.number(3), "3")
        XCTAssertEqual(ExpositionFormat.number(0.005), "0.005")
        XCTAssertEqual(ExpositionFormat.number(1_764_000_000.5), "1764000000.5")
        XCTAssertEqual(ExpositionFormat.number(.infinity), "+Inf")
        XCTAssertEqual(ExpositionFormat.number(-.infinity), "-Inf")
        XCTAssertEqual(ExpositionFormat.number(.nan), "NaN")
        XCTAssertEqual(Double(ExpositionFormat.number(1e-7)), 1e-7)
    }

    func testSeriesHandlesShareOneValueAcrossThreads() {
        let counter = Counter(name: "hits_total", help: "Hits.", labelNames: ["service"])
        let handle = counter.series("svc")
        DispatchQueue.concurrentPerform(iterations: 8) { _ in
            for _ in 0..<10_000 { handle.increment() }
        }
        XCTAssertEqual(counter.value("svc"), 80_000)
    }

    func testFleetStateExportsEveryStatusWithOneSetPerService() {
        let state = FleetState(
            services: [
                .init(name: "b-api", status: .needsSeed),
                .init(name: "a-api", status: .ok, expiresAt: 1_764_000_000_250, version: 7),
            ], pendingRequests: 2)
        let text = ExpositionFormat.render(state.families())
        let lines = text.split(separator: "\n").map(String.init)
        XCTAssertTrue(lines.contains("baton_token_expiry_timestamp_seconds{service=\"a-api\"} 1764000000.25"), text)
        XCTAssertTrue(lines.contains("baton_token_version{service=\"a-api\"} 7"), text)
        XCTAssertFalse(text.contains("baton_token_version{service=\"b-api\"}"), text)
        XCTAssertTrue(lines.contains("baton_refresh_requests_pending 2"), text)
        for service in ["a-api", "b-api"] {
            let statuses = lines.filter { $0.hasPrefix("baton_service_status{service=\"\(service)\"") }
            XCTAssertEqual(statuses.count, ServiceStatus.allCases.count, text)
            XCTAssertEqual(statuses.filter { $0.hasSuffix(" 1") }.count, 1, text)
        }
        XCTAssertTrue(lines.contains("baton_service_status{service=\"b-api\",status=\"needs_seed\"} 1"), text)
    }

    func testProcessStatParsesACommandNameWithSpacesAndParentheses() throws {
        let line =
            "4242 (baton (x) y) S 1 4242 4242 0 -1 4194560 900 0 0 0 150 25 0 0 20 0 9 0 123456 987654321 2048 18446744073709551615 1 1 0 0 0"
        let stat = try XCTUnwrap(ProcessStat.parse(line))
        XCTAssertEqual(stat.userTicks, 150)
        XCTAssertEqual(stat.systemTicks, 25)
        XCTAssertEqual(stat.startTicks, 123_456)
        XCTAssertEqual(stat.virtualBytes, 987_654_321)
        XCTAssertEqual(stat.residentPages, 2048)
    }

    func testProcessMetricsReadThisProcess() throws {
        #if os(Linux)
            let families = Dictionary(
                uniqueKeysWithValues: ProcessMetrics().collect().map { ($0.name, $0.samples[0].value) })
            XCTAssertEqual(
                Set(families.keys),
                [
                    "process_cpu_seconds_total", "process_resident_memory_bytes", "process_virtual_memory_bytes",
                    "process_start_time_seconds", "process_open_fds", "process_max_fds",
                ])
            XCTAssertGreaterThan(try XCTUnwrap(families["process_resident_memory_bytes"]), 1_000_000)
            XCTAssertGreaterThan(try XCTUnwrap(families["process_open_fds"]), 2)
            let start = try XCTUnwrap(families["process_start_time_seconds"])
            let now = Date().timeIntervalSince1970
            XCTAssertTrue(start <= now + 1 && start > now - 86_400 * 7, "start \(start), now \(now)")
        #else
            throw XCTSkip("process metrics read /proc (Linux only)")
        #endif
    }
}
