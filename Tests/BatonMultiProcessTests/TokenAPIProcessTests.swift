import BatonCommandLine
import BatonSupport
import BatonTestSupport
import Foundation
import XCTest

/// `baton serve`'s HTTP token API (README "HTTP token API") against a real redis-server, the fake
/// provider and real HTTP requests: keys and scopes, statuses, waiting, forced refreshes through
/// the shared queue, bad requests, and no token nor key in the daemon's log.
final class TokenAPIProcessTests: XCTestCase {
    private var folder: URL!
    private var cleanups: [() -> Void] = []
    private let n8nKey = "n8n-" + UUID().uuidString
    private let opsKey = "ops-" + UUID().uuidString
    private static let opsKeyVariable = "BATON_TEST_OPS_API_KEY"

    override func setUpWithError() throws {
        folder = FileManager.default.temporaryDirectory.appendingPathComponent("baton-tokenapi-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        cleanups.append { [folder] in try? FileManager.default.removeItem(at: folder!) }
    }

    override func tearDown() {
        for cleanup in cleanups.reversed() { cleanup() }
        cleanups = []
    }

    private struct Daemon {
        let api: TokenAPIClient
        let log: URL
        let provider: FakeOAuthProvider
        var text: String { (try? String(contentsOf: log, encoding: .utf8)) ?? "" }
    }

    /// Starts redis-server, the provider (tokens of `lifetime` seconds) and one `baton serve`
    /// (debug logging) whose token API has two keys: `n8n` (file, `my-api` only) and `ops`
    /// (variable, `*`). `my-api` is seeded; `other-api` is configured and never seeded.
    private func startDaemon(lifetime: Double, withKeys: Bool = true, extra: [String: Any] = [:]) async throws
        -> Daemon
    {
        let redis = try RedisServerProcess.start()
        cleanups.append { redis.stop() }
        let provider = try FakeOAuthProvider.start(lifetime: lifetime)
        cleanups.append { provider.stop() }
        let port = try freeLoopbackPort()
        // 50 callers at once from one address.
        var http: [String: Any] = [
            "listen": "127.0.0.1:\(port)", "max_connections": 128, "max_connections_per_ip": 100,
        ]
        if withKeys {
            let keyFile = folder.appendingPathComponent("n8n-api-key")
            try (n8nKey + "\n").write(to: keyFile, atomically: true, encoding: .utf8)
            try FileManager.default.setAttributes([.posixPermissions: 0o600], ofItemAtPath: keyFile.path)
            http["api_keys"] = [
                ["name": "n8n", "key_file": "n8n-api-key", "services": ["my-api"]],
                ["name": "ops", "key_env": Self.opsKeyVariable, "services": ["*"]],
            ]
        }
        let config = try TestConfiguration(
            redisURL: redis.url, settings: ["http": http, "state_dir": "state"].merging(extra) { $1 }
        )
        .service("my-api", tokenURL: provider.tokenURL, secretFile: true)
        .service("other-api", tokenURL: provider.tokenURL, secretFile: true)
        .write(in: folder)
        let tokenFile = folder.appendingPathComponent("rt")
        try provider.seedRefreshToken().write(to: tokenFile, atomically: true, encoding: .utf8)
        let seeded = try BatonExecutable.run(
            ["seed", "my-api", "--refresh-token-file", tokenFile.path, "--config", config],
            environment: [Self.opsKeyVariable: opsKey])
        XCTAssertEqual(seeded.status, 0, seeded.output)
        let (serve, log) = try BatonExecutable.start(
            ["serve", "--config", config, "--id", "api-1", "--log-level", "debug"],
            environment: [Self.opsKeyVariable: opsKey])
        cleanups.append {
            serve.terminate(grace: 10)
            try? FileManager.default.removeItem(at: log)
        }
        let daemon = Daemon(api: TokenAPIClient(port: port), log: log, provider: provider)
        try await eventually("the listener answers", timeout: .seconds(30), diagnostics: { daemon.text }) {
            (try? await daemon.api.send("GET", "/livez", key: nil))?.status == 200
        }
        return daemon
    }

    /// The first record the API hands out for `my-api`.
    private func firstRecord(_ daemon: Daemon) async throws -> TokenAPIClient.Answer {
        try await eventually("my-api has a token", timeout: .seconds(30), diagnostics: { daemon.text }) {
            let answer = try await daemon.api.token("my-api", key: self.opsKey, wait: "5s")
            return answer.status == 200 ? answer : nil
        }
    }

    /// No token the provider issued and no API key appears in the daemon's log, which did log the
    /// API's requests.
    private func assertNothingSecretLogged(_ daemon: Daemon, file: StaticString = #filePath, line: UInt = #line) throws
    {
        let text = daemon.text
        XCTAssertTrue(text.contains("token_api_request"), "requests were not logged:\n\(text)", file: file, line: line)
        let issued = try daemon.provider.issuedTokens()
        XCTAssertFalse(issued.isEmpty, file: file, line: line)
        for secret in issued + [n8nKey, opsKey] where text.contains(secret) {
            XCTFail("a secret (\(secret.prefix(4))...) is in the daemon's log", file: file, line: line)
        }
    }

    func testKeysScopesStatusesAndBadRequests() async throws {
        let daemon = try await startDaemon(lifetime: 300)
        let api = daemon.api
        let first = try await firstRecord(daemon)
        let record = first.json
        XCTAssertEqual(record["service"] as? String, "my-api")
        XCTAssertEqual(record["token_type"] as? String, "Bearer")
        XCTAssertEqual(record["status"] as? String, "ok")
        XCTAssertNotNil(record["version"] as? Int)
        XCTAssertNotNil(record["expires_at"] as? Int)
        XCTAssertTrue(
            try daemon.provider.issuedTokens(kind: "access_tokens").contains(record["access_token"] as? String ?? "?"))
        XCTAssertEqual(first.header("Content-Type"), "application/json")
        XCTAssertEqual(first.header("Cache-Control"), "no-store")
        XCTAssertFalse(first.text.contains("refresh_token"), first.text)

        // The scoped key reads its service; `*` reads any.
        let scoped = try await api.token("my-api", key: n8nKey)
        XCTAssertEqual(scoped.status, 200, "\(scoped)")
        XCTAssertEqual(scoped.json["access_token"] as? String, record["access_token"] as? String)

        // Unknown or missing keys: 401 with the challenge and no service name.
        for key in [nil, "wrong-" + UUID().uuidString, String(n8nKey.dropLast()), n8nKey + "x"] {
            let refused = try await api.token("my-api", key: key)
            XCTAssertEqual(refused.status, 401, "\(key ?? "no key"): \(refused)")
            XCTAssertTrue(refused.header("WWW-Authenticate")?.hasPrefix("Bearer") == true, "\(refused.headers)")
            XCTAssertFalse(refused.text.contains("my-api") || refused.text.contains("other-api"), "\(refused)")
            let refusedRefresh = try await api.refresh("my-api", key: key, body: #"{"version":1}"#)
            XCTAssertEqual(refusedRefresh.status, 401, "\(refusedRefresh)")
        }
        let basic = try await api.send("GET", "/v1/tokens/my-api", key: nil)
        XCTAssertEqual(basic.status, 401)

        // Out of scope, unknown and invalid names: one and the same 404.
        let outOfScope = try await api.token("other-api", key: n8nKey)
        let unknownScoped = try await api.token("no-such-api", key: n8nKey)
        let unknown = try await api.token("no-such-api", key: opsKey)
        let invalid = try await api.send("GET", "/v1/tokens/bad%20name", key: opsKey)
        for answer in [outOfScope, unknownScoped, unknown, invalid] {
            XCTAssertEqual(answer.status, 404, "\(answer)")
            XCTAssertEqual(answer.body, outOfScope.body)
        }
        let refreshOutOfScope = try await api.refresh("other-api", key: n8nKey, body: #"{"version":1}"#)
        XCTAssertEqual(refreshOutOfScope.status, 404, "\(refreshOutOfScope)")

        // Configured, never seeded: 409 with the status, at once whatever the wait.
        let started = ContinuousClock.now
        let unseeded = try await api.token("other-api", key: opsKey, wait: "20s")
        XCTAssertEqual(unseeded.status, 409, "\(unseeded)")
        XCTAssertEqual(unseeded.json["status"] as? String, "needs_seed")
        XCTAssertLessThan(ContinuousClock.now - started, .seconds(10))

        // Methods.
        let put = try await api.send("PUT", "/v1/tokens/my-api", key: opsKey)
        XCTAssertEqual(put.status, 405, "\(put)")
        let postToGet = try await api.send("POST", "/v1/tokens/my-api", key: opsKey, body: "{}")
        XCTAssertEqual(postToGet.status, 405, "\(postToGet)")
        XCTAssertEqual(postToGet.header("Allow"), "GET, HEAD")
        let getRefresh = try await api.send("GET", "/v1/tokens/my-api/refresh", key: opsKey)
        XCTAssertEqual(getRefresh.status, 405, "\(getRefresh)")
        XCTAssertEqual(getRefresh.header("Allow"), "POST")
        let head = try await api.send("HEAD", "/v1/tokens/my-api", key: opsKey)
        XCTAssertEqual(head.status, 200, "\(head)")

        // Bodies and waits.
        for body in ["{", "[]", "{}", #"{"version":-1}"#, #"{"version":"abc"}"#, #"{"version":true}"#, ""] {
            let bad = try await api.refresh("my-api", key: opsKey, body: body)
            XCTAssertEqual(bad.status, 400, "\(body): \(bad)")
        }
        let oversized = try await api.refresh(
            "my-api", key: opsKey, body: #"{"version":1,"pad":"\#(String(repeating: "x", count: 4000))"}"#)
        XCTAssertEqual(oversized.status, 413, "\(oversized)")
        let badWait = try await api.token("my-api", key: opsKey, wait: "abc")
        XCTAssertEqual(badWait.status, 400, "\(badWait)")
        let longWait = try await api.token("my-api", key: opsKey, wait: "1h")
        XCTAssertEqual(longWait.status, 200, "a long wait is cut, not refused: \(longWait)")
        // An old version is answered at once with the current record, without asking anyone.
        let calls = try daemon.provider.tokenRequests()
        let stale = try await api.refresh("my-api", key: n8nKey, body: #"{"version":0}"#, wait: "0")
        XCTAssertEqual(stale.status, 200, "\(stale)")
        XCTAssertEqual(stale.json["version"] as? Int, record["version"] as? Int)
        XCTAssertEqual(try daemon.provider.tokenRequests(), calls)

        try assertNothingSecretLogged(daemon)
    }

    func testGetWaitsForTheCoordinatorWhileTheTokenIsExpired() async throws {
        // 2-second tokens, refreshed 1 s ahead; the next refresh hangs 5 s at the provider, so the
        // stored token expires about 4 s before its successor arrives.
        let daemon = try await startDaemon(lifetime: 2)
        let first = try await firstRecord(daemon)
        let firstVersion = first.json["version"] as? Int ?? -1
        try daemon.provider.setMode("normal", count: 1, delayBefore: 5)
        let expired = try await eventually(
            "the token expires while the refresh hangs", timeout: .seconds(30), diagnostics: { daemon.text }
        ) {
            let answer = try await daemon.api.token("my-api", key: self.n8nKey, wait: "0")
            return answer.status == 503 ? answer : nil
        }
        XCTAssertEqual(expired.json["status"] as? String, "expired", "\(expired)")
        XCTAssertEqual(expired.header("Retry-After"), "1")
        XCTAssertNil(expired.json["access_token"], "\(expired)")

        let started = ContinuousClock.now
        let fresh = try await daemon.api.token("my-api", key: n8nKey, wait: "25s")
        XCTAssertEqual(fresh.status, 200, "\(fresh)\n\(daemon.text)")
        XCTAssertGreaterThan(fresh.json["version"] as? Int ?? -1, firstVersion)
        XCTAssertGreaterThan(fresh.json["expires_at"] as? Int ?? 0, Int(Date().timeIntervalSince1970 * 1000) - 1000)
        XCTAssertLessThan(ContinuousClock.now - started, .seconds(25))
        try assertNothingSecretLogged(daemon)
    }

    func testFiftyConcurrentRefreshesOfOneVersionMakeOneProviderCall() async throws {
        let daemon = try await startDaemon(lifetime: 300)
        let first = try await firstRecord(daemon)
        let version = first.json["version"] as? Int ?? -1
        let before = try daemon.provider.tokenRequests()
        // The provider answers slowly, so that all 50 wait at once while the one refresh runs.
        try daemon.provider.setMode("normal", count: 1, delay: 2)
        let api = daemon.api
        let n8nKey = self.n8nKey
        let answers = try await withThrowingTaskGroup(of: TokenAPIClient.Answer.self) { group in
            for _ in 0..<50 {
                group.addTask {
                    try await api.refresh("my-api", key: n8nKey, body: #"{"version":\#(version)}"#, wait: "30s")
                }
            }
            return try await group.reduce(into: []) { $0.append($1) }
        }
        XCTAssertEqual(answers.count, 50)
        for answer in answers { XCTAssertEqual(answer.status, 200, "\(answer)\n\(daemon.text)") }
        let versions = Set(answers.compactMap { $0.json["version"] as? Int })
        let tokens = Set(answers.compactMap { $0.json["access_token"] as? String })
        XCTAssertEqual(versions.count, 1, "\(versions)")
        XCTAssertEqual(tokens.count, 1)
        XCTAssertGreaterThan(versions.first ?? -1, version)
        XCTAssertNotEqual(tokens.first, first.json["access_token"] as? String)
        XCTAssertEqual(try daemon.provider.tokenRequests() - before, 1, "one provider call for one failed version")
        // They went through the forced-refresh queue, whose answered requests the coordinator
        // counts (each caller that found no newer record pushed one).
        let scraped = LockedBox("")
        try await eventually(
            "the coordinator counted the requests", timeout: .seconds(15),
            diagnostics: { scraped.withLockedValue { $0 } }
        ) {
            let metrics = try await api.send("GET", "/metrics", key: nil).text
            scraped.withLockedValue { $0 = metrics }
            let handled = metrics.split(separator: "\n")
                .filter { $0.hasPrefix(#"baton_forced_refresh_requests_total{outcome="answered"}"#) }
                .compactMap { Double($0.split(separator: " ").last ?? "") }
                .reduce(0, +)
            return handled >= 1 && handled <= 50
        }

        // The same failed version again: answered from the store, no further call.
        let again = try await daemon.api.refresh("my-api", key: n8nKey, body: #"{"version":\#(version)}"#)
        XCTAssertEqual(again.json["version"] as? Int, versions.first)
        XCTAssertEqual(try daemon.provider.tokenRequests() - before, 1)
        try assertNothingSecretLogged(daemon)
    }

    func testNeedsReauthIs409() async throws {
        let daemon = try await startDaemon(lifetime: 300)
        let first = try await firstRecord(daemon)
        let version = first.json["version"] as? Int ?? -1
        try daemon.provider.setMode("invalid_grant")
        let answer = try await daemon.api.refresh(
            "my-api", key: opsKey, body: #"{"version":"\#(version)"}"#, wait: "25s")
        XCTAssertEqual(answer.status, 409, "\(answer)\n\(daemon.text)")
        XCTAssertEqual(answer.json["status"] as? String, "needs_reauth")
        XCTAssertGreaterThanOrEqual(answer.json["version"] as? Int ?? -1, version)
        XCTAssertEqual((answer.json["last_error"] as? [String: Any])?["code"] as? String, "invalid_grant")
        XCTAssertTrue((answer.json["message"] as? String)?.contains("baton seed my-api") == true, "\(answer)")
        XCTAssertNil(answer.json["access_token"])
        // The access token stays valid until it expires: GET still hands it out, with the status.
        let current = try await daemon.api.token("my-api", key: opsKey)
        XCTAssertEqual(current.status, 200, "\(current)")
        XCTAssertEqual(current.json["status"] as? String, "needs_reauth")
        XCTAssertEqual(current.json["access_token"] as? String, first.json["access_token"] as? String)
        try assertNothingSecretLogged(daemon)
    }

    func testTheAPIIsOffWithoutKeys() async throws {
        let daemon = try await startDaemon(lifetime: 300, withKeys: false)
        try await eventually("my-api is refreshed", timeout: .seconds(30), diagnostics: { daemon.text }) {
            try daemon.provider.tokenRequests() >= 1
        }
        let answer = try await daemon.api.token("my-api", key: opsKey)
        XCTAssertEqual(answer.status, 404, "\(answer)")
        XCTAssertFalse(daemon.text.contains("token_api_enabled"), daemon.text)
    }
}
