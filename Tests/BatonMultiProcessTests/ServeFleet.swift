import BatonCommandLine
import BatonRedis
import BatonSupport
import BatonTestSupport
import BatonTokens
import Foundation
import XCTest

// @unchecked: tests drive it from one task at a time.
/// Three `baton serve` replicas refreshing rotating tokens of six services against any Redis
/// URL (one server, Sentinel, Cluster), for tests that break Redis under them.
///
/// Tokens live 4 s and are refreshed 2 s ahead: a refresh somewhere every few hundred ms. Each
/// answer comes 0.4 s after the provider rotated: a refresh is in flight most of the time.
final class ServeFleet: @unchecked Sendable {
    let services = (1...6).map { "api-\($0)" }
    let provider: FakeOAuthProvider
    let folder: URL
    let config: String
    let client: RedisClient
    let store: TokenStore
    private(set) var replicas: [(ChildProcess, URL)] = []

    /// Writes the configuration, seeds every service, starts the replicas and waits until every
    /// service has been refreshed twice.
    /// - Parameter lockTTL: must outlast a failover of the Redis under test (Sentinel's
    ///   `down-after-milliseconds` 2 s or `cluster-node-timeout` 2 s, then an election): a lease
    ///   that expires on the promoted replica before its holder stored the rotated token lets
    ///   another replica present the old one (`invalid_grant`).
    /// - Parameter environment: the replicas' environment (e.g. `BATON_ENCRYPTION_KEYS`).
    init(redisURL: String, lockTTL: String = "15s", environment: [String: String] = [:]) async throws {
        provider = try FakeOAuthProvider.start(lifetime: 4)
        try provider.setMode("normal", delay: 0.4)
        folder = FileManager.default.temporaryDirectory.appendingPathComponent("baton-fleet-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        var configuration = TestConfiguration(
            redisURL: redisURL,
            settings: [
                "lock_ttl": lockTTL, "lock_wait": "2s", "persist_replicas": 1, "persist_timeout": "1s",
                "state_dir": folder.appendingPathComponent("state").path,
            ])
        for service in services {
            configuration = configuration.service(
                service, tokenURL: provider.tokenURL, secretFile: true,
                ["refresh_buffer": "2s", "request_timeout": "3s"])
        }
        config = try configuration.write(in: folder)
        for service in services {
            let tokenFile = folder.appendingPathComponent("seed-\(service)")
            try provider.seedRefreshToken().write(to: tokenFile, atomically: true, encoding: .utf8)
            let seeded = try BatonExecutable.run(
                ["seed", service, "--refresh-token-file", tokenFile.path, "--config", config])
            XCTAssertEqual(seeded.status, 0, seeded.output)
        }
        for index in 1...3 {
            replicas.append(try BatonExecutable.start(Self.serve(config, index), environment: environment))
        }
        client = try RedisClient(url: redisURL)
        // Reads (never writes) whatever the replicas sealed, under either test key.
        store = TokenStore(
            client: client, prefix: "oauth",
            encryption: TestKeyring.keyring(TestKeyring.primaryEntry + "," + TestKeyring.nextEntry))
        try await everyServiceRefreshes(2, since: [:], "every service has been refreshed twice", timeout: .seconds(60))
    }

    private static func serve(_ config: String, _ index: Int) -> [String] {
        ["serve", "--config", config, "--id", "replica-\(index)"]
    }

    /// Restarts each replica in turn with `environment` (SIGTERM, which drains, then a new
    /// process), waiting after each until every service has refreshed again: a rolling restart.
    func restartReplicas(environment: [String: String]) async throws {
        for index in replicas.indices {
            replicas[index].0.terminate(grace: 10)
            let before = await versions()
            replicas[index] = try BatonExecutable.start(Self.serve(config, index + 1), environment: environment)
            try await everyServiceRefreshes(
                1, since: before, "every service refreshes after restarting replica-\(index + 1)")
        }
    }

    /// Stops the replicas, the provider and the client, and removes the folder.
    func stop() {
        for (process, _) in replicas where process.isRunning { process.terminate(grace: 5) }
        client.shutDown()
        provider.stop()
        try? FileManager.default.removeItem(at: folder)
    }

    /// Each replica's output.
    func logs() -> [String] {
        replicas.map { (try? String(contentsOf: $0.1, encoding: .utf8)) ?? "" }
    }

    /// The replicas' recent output and the provider's counters, for a failed wait.
    func diagnostics() -> String {
        "replica logs:\n" + logs().map { String($0.suffix(4000)) }.joined(separator: "\n---\n")
            + "\nprovider: \((try? provider.stats()) ?? [:])"
    }

    /// The version of every service whose record is `ok`.
    func versions() async -> [String: Int64] {
        var found: [String: Int64] = [:]
        for service in services {
            if let record = try? await store.record(service), record.status == .ok { found[service] = record.version }
        }
        return found
    }

    /// Waits until every service has refreshed `count` more times than in `since`.
    func everyServiceRefreshes(
        _ count: Int64, since: [String: Int64], _ what: String, timeout: Duration = .seconds(120)
    ) async throws {
        try await eventually(what, timeout: timeout, diagnostics: diagnostics) {
            let now = await self.versions()
            return self.services.allSatisfy { (now[$0] ?? 0) >= (since[$0] ?? 0) + count }
        }
    }

    /// A service whose refresh is at the provider now: the token it presented is still the one
    /// stored (the provider answers 0.4 s after rotating it).
    func serviceWithARefreshInFlight() async throws -> String {
        try await eventually("a refresh is in flight at the provider", timeout: .seconds(30), diagnostics: diagnostics)
        {
            () async throws -> String? in
            let presented = Set(
                (try self.provider.ledger()["inflight"] as? [[String: Any]] ?? []).compactMap {
                    $0["presented"] as? String
                })
            for service in self.services {
                if let stored = try await self.store.secret(service)?.refreshToken,
                    presented.contains(Self.fingerprint(stored))
                {
                    return service
                }
            }
            return nil
        }
    }

    /// Stops the replicas, then checks the provider's ledger: no `invalid_grant`, and each
    /// service's stored refresh token is its family's one valid token; nothing left in the spool.
    func checkNoRotatedTokenWasLost(file: StaticString = #filePath, line: UInt = #line) async throws {
        for (process, _) in replicas { process.terminate(grace: 10) }
        let ledger = try provider.ledger()
        let invalid = ledger["invalid_grant"] as? [String: Int] ?? [:]
        XCTAssertEqual(
            invalid.values.reduce(0, +), 0, "invalid_grant by cause: \(invalid)\n\(diagnostics())", file: file,
            line: line)
        let tokens = ledger["tokens"] as? [[String: Any]] ?? []
        let valid = Set(tokens.filter { $0["state"] as? String == "valid" }.compactMap { $0["fp"] as? String })
        for service in services {
            let stored = try await store.secret(service)?.refreshToken
            XCTAssertTrue(
                valid.contains(Self.fingerprint(stored ?? "")),
                "\(service): the stored refresh token is not valid at the provider", file: file, line: line)
        }
        let spooled =
            (try? FileManager.default.contentsOfDirectory(atPath: folder.appendingPathComponent("state/spool").path))
            ?? []
        XCTAssertEqual(
            spooled.filter { $0.hasSuffix(".json") }, [], "nothing left in the spool", file: file, line: line)
    }

    /// The provider's public name of a token (its ledger's `fp`).
    static func fingerprint(_ token: String) -> String {
        Digest.sha256(Array(token.utf8)).prefix(8).map { String(format: "%02x", $0) }.joined()
    }
}
