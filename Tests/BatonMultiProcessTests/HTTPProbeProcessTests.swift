import BatonCommandLine
import BatonSupport
import BatonTestSupport
import Foundation
import XCTest

/// `baton serve`'s `/livez` and `/readyz`, asked by `baton health` (the real libcurl client), on an
/// ephemeral port, against a real redis-server and the fake provider.
final class HTTPProbeProcessTests: XCTestCase {
    private var folder: URL!

    override func setUpWithError() throws {
        folder = FileManager.default.temporaryDirectory.appendingPathComponent("baton-http-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        addTeardownBlock { [folder] in try? FileManager.default.removeItem(at: folder!) }
    }

    /// A configuration for `redisURL` listening on a free loopback port; returns its path and port.
    private func writeConfiguration(redisURL: String, tokenURL: String) throws -> (String, Int) {
        let port = try freeLoopbackPort()
        let path = try TestConfiguration(
            redisURL: redisURL, settings: ["http": ["listen": "127.0.0.1:\(port)"], "state_dir": "state"]
        )
        .service("my-api", tokenURL: tokenURL, secretFile: true)
        .write(in: folder)
        return (path, port)
    }

    /// Runs `baton health` with `arguments` off the cooperative pool.
    private func health(_ arguments: [String]) async throws -> (status: Int32, output: String) {
        try await runOnDedicatedThread(named: "baton-health") { () throws -> (status: Int32, output: String) in
            try BatonExecutable.run(["health"] + arguments, timeout: 30)
        }
    }

    private func text(_ log: URL) -> String { (try? String(contentsOf: log, encoding: .utf8)) ?? "" }

    func testProbesAnswerAndReadinessTurns503AtSIGTERMWhileARefreshDrains() async throws {
        let redis = try RedisServerProcess.start()
        defer { redis.stop() }
        let provider = try FakeOAuthProvider.start(lifetime: 60)
        defer { provider.stop() }
        let (config, port) = try writeConfiguration(redisURL: redis.url, tokenURL: provider.tokenURL)
        try provider.seedRefreshToken().write(
            to: folder.appendingPathComponent("rt"), atomically: true, encoding: .utf8)
        let seeded = try BatonExecutable.run([
            "seed", "my-api", "--refresh-token-file", folder.appendingPathComponent("rt").path, "--config", config,
        ])
        XCTAssertEqual(seeded.status, 0, seeded.output)
        // The first refresh hangs 6 s at the provider: the drain after SIGTERM lasts that long.
        try provider.setMode("normal", count: 1, delayBefore: 6)

        let (serve, log) = try BatonExecutable.start(["serve", "--config", config, "--id", "probe-1"])
        defer {
            serve.terminate(grace: 10)
            try? FileManager.default.removeItem(at: log)
        }
        let live = "http://127.0.0.1:\(port)/livez"
        try await eventually("/livez answers 200", timeout: .seconds(30), diagnostics: { self.text(log) }) {
            try await health(["--url", live]).status == 0
        }
        XCTAssertTrue(text(log).contains(#""http_listening""#) && text(log).contains("127.0.0.1:\(port)"), text(log))
        // --config finds the listener through http.listen.
        try await eventually("/readyz answers 200", timeout: .seconds(30), diagnostics: { self.text(log) }) {
            try await health(["--config", config]).status == 0
        }

        // A second replica on the same address cannot bind: it exits 2 and says why.
        let clash = try BatonExecutable.run(["serve", "--config", config, "--id", "probe-2"], timeout: 30)
        XCTAssertEqual(clash.status, 2, clash.output)
        XCTAssertTrue(clash.output.contains("address already in use"), clash.output)

        try await eventually("the slow refresh is at the provider", timeout: .seconds(30)) {
            try provider.requestsInFlight() == 1
        }
        serve.signal(SIGTERM)
        let draining = try await health(["--url", "http://127.0.0.1:\(port)/readyz"])
        XCTAssertEqual(draining.status, 1, draining.output)
        XCTAssertTrue(draining.output.contains("503 shutting down"), draining.output)
        XCTAssertTrue(serve.isRunning, "the drain should still be running (a refresh is in flight):\n\(text(log))")
        let stillLive = try await health(["--url", live])
        XCTAssertEqual(stillLive.status, 0, "liveness holds while draining: \(stillLive.output)")

        XCTAssertEqual(serve.waitUntilExit(), 0, text(log))
        let gone = try await health(["--url", live, "--timeout", "1s"])
        XCTAssertEqual(gone.status, 1, gone.output)
        XCTAssertTrue(gone.output.contains("baton health: http://127.0.0.1:\(port)/livez: "), gone.output)
    }

    func testReadinessIs503OnAReplicaAndWhenRedisIsDown() async throws {
        let master = try RedisServerProcess.start(arguments: RedisServerProcess.replicationFriendlyArguments)
        defer { master.stop() }
        let replica = try RedisServerProcess.startReplica(of: master)
        defer { replica.stop() }
        let provider = try FakeOAuthProvider.start(lifetime: 60)
        defer { provider.stop() }
        let (config, port) = try writeConfiguration(redisURL: replica.url, tokenURL: provider.tokenURL)
        let ready = "http://127.0.0.1:\(port)/readyz"

        let (serve, log) = try BatonExecutable.start(["serve", "--config", config, "--id", "probe-replica"])
        defer {
            serve.terminate(grace: 10)
            try? FileManager.default.removeItem(at: log)
        }
        try await eventually("/livez answers 200", timeout: .seconds(30), diagnostics: { self.text(log) }) {
            try await health(["--url", "http://127.0.0.1:\(port)/livez"]).status == 0
        }
        try await eventually("/readyz names the replica", timeout: .seconds(30), diagnostics: { self.text(log) }) {
            let answer = try await health(["--url", ready])
            return answer.status == 1 && answer.output.contains("503 Redis is a slave, not a writable master")
        }

        replica.stop()
        try await eventually(
            "/readyz says Redis is unreachable", timeout: .seconds(30), diagnostics: { self.text(log) }
        ) {
            let answer = try await health(["--url", ready])
            return answer.status == 1 && answer.output.contains("503 Redis unreachable")
        }
        let live = try await health(["--url", "http://127.0.0.1:\(port)/livez"])
        XCTAssertEqual(live.status, 0, "a Redis outage is no reason to restart the process: \(live.output)")
        let usage = try await health(["--url", ready, "--timeout", "soon"])
        XCTAssertEqual(usage.status, 2, "a bad option is a usage error: \(usage.output)")
    }
}
