import BatonCommandLine
import BatonTestSupport
import Foundation
import XCTest

#if canImport(FoundationNetworking)
    import FoundationNetworking
#endif

/// A real Prometheus (Debian's `prometheus` package) scraping two `baton serve` replicas'
/// `/metrics` every second, queried through its HTTP API: both targets up, a refresh counter that
/// moves, and the Redis-state status gauge the same from either replica; and `promtool check
/// metrics` on a scrape of one of them.
///
/// Needs `baton serve`'s HTTP listener (`http.listen`, the `/metrics` route).
final class PrometheusScrapeTests: XCTestCase {
    private var cleanups: [() -> Void] = []
    private var logs: [(String, URL)] = []

    override func tearDown() {
        for cleanup in cleanups.reversed() { cleanup() }
        cleanups = []
    }

    func testPrometheusScrapesTwoReplicasAndSeesRefreshesCounted() async throws {
        let prometheusPath = "/usr/bin/prometheus"
        guard FileManager.default.isExecutableFile(atPath: prometheusPath) else {
            throw XCTSkip("prometheus is not installed: `apt-get install -y prometheus` (CI installs it)")
        }
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("baton-prom-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        cleanups.append { try? FileManager.default.removeItem(at: folder) }
        let redis = try RedisServerProcess.start()
        cleanups.append { redis.stop() }
        // 3-second tokens refreshed 1.5 s ahead: a refresh every second and a half.
        let provider = try FakeOAuthProvider.start(lifetime: 3)
        cleanups.append { provider.stop() }

        let ports = [try freeLoopbackPort(), try freeLoopbackPort()]
        var configs: [String] = []
        for (index, port) in ports.enumerated() {
            let configuration = TestConfiguration(
                redisURL: redis.url,
                settings: [
                    "lock_ttl": "5s", "lock_wait": "2s", "state_dir": "state-\(index)",
                    "http": ["listen": "127.0.0.1:\(port)"],
                ]
            )
            .service("my-api", tokenURL: provider.tokenURL, secretFile: true, ["refresh_buffer": "1500ms"])
            configs.append(try configuration.write(in: folder, name: "baton-\(index).json"))
        }
        let tokenFile = folder.appendingPathComponent("rt")
        try provider.seedRefreshToken().write(to: tokenFile, atomically: true, encoding: .utf8)
        let seeded = try BatonExecutable.run([
            "seed", "my-api", "--refresh-token-file", tokenFile.path, "--config", configs[0],
        ])
        XCTAssertEqual(seeded.status, 0, seeded.output)
        for (index, config) in configs.enumerated() {
            let (process, log) = try BatonExecutable.start(["serve", "--config", config, "--id", "replica-\(index)"])
            logs.append(("replica-\(index)", log))
            cleanups.append {
                process.terminate(grace: 5)
                try? FileManager.default.removeItem(at: log)
            }
        }

        let prometheusPort = try freeLoopbackPort()
        let targets = ports.map { "'127.0.0.1:\($0)'" }.joined(separator: ", ")
        let scrapeConfig = folder.appendingPathComponent("prometheus.yml")
        try """
        global:
          scrape_interval: 1s
          scrape_timeout: 1s
        scrape_configs:
          - job_name: baton
            metrics_path: /metrics
            static_configs:
              - targets: [\(targets)]
        """.write(to: scrapeConfig, atomically: true, encoding: .utf8)
        let prometheusLog = folder.appendingPathComponent("prometheus.log")
        let prometheus = try ChildProcess(
            executable: prometheusPath,
            arguments: [
                "--config.file=\(scrapeConfig.path)",
                "--storage.tsdb.path=\(folder.appendingPathComponent("tsdb").path)",
                "--web.listen-address=127.0.0.1:\(prometheusPort)",
            ],
            streams: .file(prometheusLog.path))
        logs.append(("prometheus", prometheusLog))
        cleanups.append { prometheus.terminate(grace: 5) }
        let api = "http://127.0.0.1:\(prometheusPort)/api/v1"

        try await eventually(
            "Prometheus sees both replicas up", timeout: .seconds(90),
            diagnostics: { self.diagnostics(api: api) }
        ) {
            // Prometheus takes a moment to listen: a refused connection means not yet.
            guard let up = try? await Self.query(api, "up{job=\"baton\"}") else { return false }
            return up.count == 2 && up.allSatisfy { $0.value == 1 }
        }
        let before = try await Self.query(api, "sum(baton_refresh_total{result=\"refreshed\"})").first?.value ?? 0
        try await eventually(
            "the refresh counter moves in Prometheus", timeout: .seconds(60),
            diagnostics: { self.diagnostics(api: api) }
        ) {
            let now = try await Self.query(api, "sum(baton_refresh_total{result=\"refreshed\"})").first?.value ?? 0
            return now > before
        }
        // The status gauge comes from Redis: both replicas show my-api ok, whichever refreshed it.
        try await eventually(
            "both replicas export my-api as ok", timeout: .seconds(30),
            diagnostics: { self.diagnostics(api: api) }
        ) {
            let ok = try await Self.query(api, "baton_service_status{service=\"my-api\",status=\"ok\"}")
            return ok.count == 2 && ok.allSatisfy { $0.value == 1 }
        }
        // A scrape as Prometheus got it, through promtool's linter.
        let scrape = try await Self.get(URL(string: "http://127.0.0.1:\(ports[0])/metrics")!)
        let scrapeFile = folder.appendingPathComponent("scrape.txt")
        try scrape.write(to: scrapeFile)
        let checked = try InstalledProgram.run("sh", ["-c", "promtool check metrics < '\(scrapeFile.path)'"])
        XCTAssertTrue(checked.succeeded, "promtool check metrics: \(checked.output)")
        XCTAssertTrue(String(decoding: scrape, as: UTF8.self).contains("baton_refresh_total{service=\"my-api\""))
        let redisUp = try await Self.query(api, "baton_redis_up")
        XCTAssertEqual(redisUp.count, 2)
        XCTAssertTrue(redisUp.allSatisfy { $0.value == 1 }, "\(redisUp)")
    }

    /// One instant query: each series' `instance` label and value.
    private static func query(_ api: String, _ expression: String) async throws -> [(instance: String, value: Double)] {
        var components = URLComponents(string: "\(api)/query")!
        components.queryItems = [URLQueryItem(name: "query", value: expression)]
        let body = try await get(components.url!)
        guard let object = try JSONSerialization.jsonObject(with: body) as? [String: Any],
            object["status"] as? String == "success", let data = object["data"] as? [String: Any],
            let results = data["result"] as? [[String: Any]]
        else {
            throw CocoaError(
                .fileReadCorruptFile,
                userInfo: [NSLocalizedDescriptionKey: "unexpected answer: \(String(decoding: body, as: UTF8.self))"])
        }
        return results.compactMap { result in
            guard let metric = result["metric"] as? [String: String], let pair = result["value"] as? [Any],
                pair.count == 2, let text = pair[1] as? String, let value = Double(text)
            else { return nil }
            return (metric["instance"] ?? "", value)
        }
    }

    private static func get(_ url: URL) async throws -> Data {
        var request = URLRequest(url: url)
        request.timeoutInterval = 5
        return try await withCheckedThrowingContinuation { continuation in
            URLSession.shared.dataTask(with: request) { data, _, error in
                if let error {
                    continuation.resume(throwing: error)
                } else {
                    continuation.resume(returning: data ?? Data())
                }
            }.resume()
        }
    }

    /// Prometheus's view of its targets (last error of each scrape) and every log so far.
    private func diagnostics(api: String) -> String {
        var text = "targets: "
        if let url = URL(string: "\(api)/targets"), let body = try? Data(contentsOf: url) {
            text += String(decoding: body, as: UTF8.self)
        }
        for (name, log) in logs {
            text += "\n--- \(name):\n" + ((try? String(contentsOf: log, encoding: .utf8)) ?? "(no log)")
        }
        return text
    }
}
