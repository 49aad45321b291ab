import BatonCommandLine
import BatonRedis
import BatonTestSupport
import BatonTokens
import Foundation
import XCTest

/// The shipped `Deploy/redis/users.acl`, loaded into a redis-server started with the shipped
/// docker-compose command: every Baton command works as `coordinator`, every documented worker
/// command works as `worker`, nobody gets `NOPERM`, and the worker cannot read a refresh token.
///
/// The ACL file is the shipped one with test passwords in place of `CHANGE-ME-...`, plus one
/// test-only administrator (`acl-test-admin`) that reads `ACL LOG` at the end: Redis logs every
/// denied command there, including those inside Lua scripts and pub/sub subscriptions a process
/// may only have logged (or retried) quietly.
final class ShippedACLTests: XCTestCase {
    private static let service = "acl-api"
    private static let lockName = "acl-test"

    private var redis: RedisServerProcess!
    private var provider: FakeOAuthProvider!
    private var folder: URL!
    private var configPath = ""
    private var coordinatorURL = ""
    private var workerURL = ""
    private var adminClient: RedisClient!
    private var coordinatorClient: RedisClient!
    private var store: TokenStore!
    private var replicas: [String: (ChildProcess, URL)] = [:]
    /// Every access token seen, blanked out of anything a failure message shows.
    private var seenTokens: Set<String> = []

    override func setUp() async throws {
        folder = FileManager.default.temporaryDirectory.appendingPathComponent("baton-acl-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        let passwords = ["coordinator": Self.randomPassword(), "worker": Self.randomPassword()]
        let adminPassword = Self.randomPassword()
        let acl = try ShippedDeployment.aclFileCopy(
            in: folder, passwords: passwords,
            extraLines: ["user acl-test-admin on >\(adminPassword) ~* &* +@all"])
        // The shipped server command, with the ACL file's container path replaced by the copy.
        var arguments = try ShippedDeployment.redisCommandArguments()
        guard let aclOption = arguments.firstIndex(of: "--aclfile"), aclOption + 1 < arguments.count else {
            throw ShippedDeployment.ReadError(
                description: "docker-compose.yml's redis command loads no --aclfile FILE: \(arguments)")
        }
        arguments[aclOption + 1] = acl.path
        redis = try RedisServerProcess.start(arguments: arguments)
        coordinatorURL = redis.url(username: "coordinator", password: passwords["coordinator"])
        workerURL = redis.url(username: "worker", password: passwords["worker"])
        adminClient = try RedisClient(url: redis.url(username: "acl-test-admin", password: adminPassword))
        coordinatorClient = try RedisClient(url: coordinatorURL)
        store = TokenStore(client: coordinatorClient, prefix: "oauth", encryption: TestKeyring.encryption)
        provider = try FakeOAuthProvider.start(lifetime: 300)

        // The coordinator's URL (with its password) goes in the file, as `--redis` is no place for a password.
        configPath = try TestConfiguration(
            redisURL: coordinatorURL,
            settings: [
                "lock_ttl": "5s", "lock_wait": "10s",
                "forced_refresh_min_interval": "1s", "state_dir": "state",
            ]
        )
        .service(
            Self.service, tokenURL: provider.tokenURL, secretFile: true,
            ["refresh_buffer": "5s", "request_timeout": "4s"]
        )
        .write(in: folder)
    }

    override func tearDown() async throws {
        for (process, log) in replicas.values {
            process.terminate(grace: 3)
            try? FileManager.default.removeItem(at: log)
        }
        replicas = [:]
        adminClient?.shutDown()
        coordinatorClient?.shutDown()
        provider?.stop()
        redis?.stop()
        if let folder { try? FileManager.default.removeItem(at: folder) }
    }

    func testEveryCommandWorksUnderTheShippedUsers() async throws {
        let keys = try TokenKeys(prefix: "oauth", service: Self.service)
        _ = try await adminClient.send("ACL", "LOG", "RESET")

        // Coordinator: seed, two serve replicas, contended refreshes.
        let tokenFile = folder.appendingPathComponent("refresh-token")
        try provider.seedRefreshToken().write(to: tokenFile, atomically: true, encoding: .utf8)
        try await expectSuccess(
            "coordinator: baton seed",
            BatonExecutable.run(["seed", Self.service, "--refresh-token-file", tokenFile.path, "--config", configPath]))
        for id in ["replica-1", "replica-2"] {
            replicas[id] = try BatonExecutable.start(["serve", "--config", configPath, "--id", id])
        }
        let first = try await waitForRecord(newerThan: 0, "the replicas' first refresh")

        // Three processes forcing a refresh at once: all but one wait for the service lock, woken
        // through `PSUBSCRIBE oauth:*:wake`.
        let refreshes = try (0..<3).map { _ in
            try BatonExecutable.start(["refresh", Self.service, "--force", "--config", configPath])
        }
        for (index, (process, output)) in refreshes.enumerated() {
            try await expectSuccess("coordinator: baton refresh --force #\(index + 1)", finish(process, output))
        }
        let refreshed = try await waitForRecord(newerThan: first.version, "baton refresh --force")

        // Worker: baton get, then baton get --newer-than (LPUSH a request, SUBSCRIBE to the change
        // channel, wait); the replicas serve the request (BLMOVE, SADD, heartbeats, LREM).
        let workerEnvironment = ["BATON_REDIS_URL": workerURL]
        let get = try BatonExecutable.run(["get", Self.service], environment: workerEnvironment, timeout: 30)
        try await expectSuccess("worker: baton get", get)
        let current = try await waitForRecord(newerThan: refreshed.version - 1, "the current record")
        XCTAssertEqual(
            get.output.trimmingCharacters(in: .whitespacesAndNewlines), current.accessToken,
            "worker: baton get printed something else than the token: \(redacted(get.output))")
        let newer = try BatonExecutable.run(
            ["get", Self.service, "--newer-than", String(current.version), "--wait", "20s", "--json"],
            environment: workerEnvironment, timeout: 40)
        try await expectSuccess("worker: baton get --newer-than", newer)
        let newerJSON = try? JSONSerialization.jsonObject(with: Data(newer.output.utf8)) as? [String: Any]
        let newerVersion = (newerJSON?["version"] as? NSNumber)?.int64Value ?? 0
        XCTAssertGreaterThan(newerVersion, current.version, "worker: baton get --newer-than: \(redacted(newer.output))")

        // Worker: the README's redis-cli commands, and what n8n's Redis node sends (TYPE first when
        // the key type is "Automatic").
        try await expectSuccess("worker: redis-cli PING", redisCLI(["PING"]), contains: "PONG")
        try await expectSuccess("worker: redis-cli TYPE", redisCLI(["TYPE", keys.token]), contains: "string")
        let record = try redisCLI(["GET", keys.token])
        try await expectSuccess("worker: redis-cli GET token", record, contains: "\"access_token\"")
        let latest = try await waitForRecord(newerThan: newerVersion - 1, "the record after baton get --newer-than")
        let request = "{\"service\":\"\(Self.service)\",\"version\":\(latest.version)}"
        try await expectSuccess("worker: redis-cli LPUSH", redisCLI(["LPUSH", "oauth:refresh-requests", request]))
        _ = try await waitForRecord(newerThan: latest.version, "the forced refresh asked for with redis-cli LPUSH")

        // What the worker must never do.
        let secret = try redisCLI(["GET", keys.secret])
        XCTAssertTrue(secret.output.contains("NOPERM"), "the worker read a refresh-token key (status \(secret.status))")
        XCTAssertFalse(secret.output.contains("refresh_token"), "the worker read a refresh token")
        let overwrite = try redisCLI(["SET", keys.token, "forged"])
        XCTAssertTrue(
            overwrite.output.contains("NOPERM"), "the worker could overwrite a token record: \(overwrite.output)")

        // Coordinator: `baton lock run` under the default prefix `baton`, contended. The first holder
        // waits for a file; the other two queue (so they are subscribed to `baton:*:wake`), then the
        // lock is handed from one to the next.
        let lockFolder = folder.appendingPathComponent("lock")
        try FileManager.default.createDirectory(at: lockFolder, withIntermediateDirectories: true)
        let go = lockFolder.appendingPathComponent("go").path
        let fences = lockFolder.appendingPathComponent("fences").path
        let body = "echo \"$BATON_LOCK_FENCE\" >> '\(fences)'; while [ ! -e '\(go)' ]; do sleep 0.05; done"
        let coordinatorEnvironment = ["BATON_REDIS_URL": coordinatorURL]
        func lockRun() throws -> (ChildProcess, URL) {
            try BatonExecutable.start(
                ["lock", "run", Self.lockName, "--ttl", "5s", "--wait", "60s", "--", "/bin/sh", "-c", body],
                environment: coordinatorEnvironment)
        }
        var holders = [try lockRun()]
        try await waitFor("the first baton lock run holds baton:{\(Self.lockName)}:lock", processes: holders) {
            try await self.adminClient.send("EXISTS", "baton:{\(Self.lockName)}:lock").integer == 1
        }
        holders += [try lockRun(), try lockRun()]
        try await waitFor("two baton lock run waiters queue on baton:{\(Self.lockName)}:queue", processes: holders) {
            try await self.adminClient.send("LLEN", "baton:{\(Self.lockName)}:queue").integer == 2
        }
        XCTAssertTrue(FileManager.default.createFile(atPath: go, contents: nil), "could not create \(go)")
        for (index, (process, output)) in holders.enumerated() {
            try await expectSuccess("coordinator: baton lock run #\(index + 1)", finish(process, output))
        }
        let fenceList = try String(contentsOfFile: fences, encoding: .utf8).split(separator: "\n").compactMap {
            Int64($0)
        }
        XCTAssertEqual(fenceList.count, 3, "three critical sections: \(fenceList)")
        XCTAssertEqual(fenceList, fenceList.sorted(), "fences increase in hand-over order: \(fenceList)")
        XCTAssertEqual(Set(fenceList).count, fenceList.count, "every holder had its own fence: \(fenceList)")

        // Coordinator: the ops commands.
        try await expectSuccess(
            "coordinator: baton status", BatonExecutable.run(["status", "--config", configPath], timeout: 30))
        try await expectSuccess(
            "coordinator: baton ping",
            BatonExecutable.run(["ping", "--count", "1"], environment: coordinatorEnvironment, timeout: 30))
        try await expectSuccess(
            "coordinator: baton lock status",
            BatonExecutable.run(["lock", "status", Self.lockName], environment: coordinatorEnvironment, timeout: 30))

        // The replicas stop cleanly, having logged no permission error.
        for id in replicas.keys.sorted() {
            guard let (process, log) = replicas[id] else { continue }
            process.terminate(grace: 15)
            let text = (try? String(contentsOf: log, encoding: .utf8)) ?? ""
            XCTAssertEqual(
                process.terminationStatus, 0,
                "replica \(id) exited \(process.terminationStatus ?? -1); its log:\n\(redacted(text))")
            XCTAssertFalse(text.contains("NOPERM"), "replica \(id) was denied something; its log:\n\(redacted(text))")
        }

        // Redis's own record: the worker's two refused commands, and nothing else.
        let denials = try await aclLog()
        let expected = denials.filter {
            $0["username"] == "worker" && ($0["object"] == keys.secret || $0["object"] == "set")
        }
        let unexpected = denials.filter { entry in !expected.contains { $0 == entry } }
        XCTAssertTrue(
            unexpected.isEmpty,
            "ACL LOG has denials besides the worker's two forbidden commands:\n\(unexpected.map { $0.description }.joined(separator: "\n"))"
        )
        XCTAssertEqual(
            Set(expected.compactMap { $0["object"] }), [keys.secret, "set"],
            "ACL LOG lacks the worker's refused commands: \(denials)")
        XCTAssertEqual(try provider.invalidGrants(), 0)
    }

    // MARK: - Helpers

    private static func randomPassword() -> String {
        (UUID().uuidString + UUID().uuidString).replacingOccurrences(of: "-", with: "").lowercased()
    }

    /// Fails (and throws, ending the test) unless the command exited 0 without `NOPERM` and, when
    /// given, printed `expected`.
    private func expectSuccess(
        _ label: String, _ result: (status: Int32, output: String), contains expected: String? = nil,
        file: StaticString = #filePath, line: UInt = #line
    ) async throws {
        var problems: [String] = []
        if result.status != 0 { problems.append("exited \(result.status)") }
        if result.output.contains("NOPERM") { problems.append("was refused (NOPERM)") }
        if let expected, !result.output.contains(expected) { problems.append("did not print \(expected)") }
        guard !problems.isEmpty else { return }
        let message =
            "\(label) \(problems.joined(separator: ", ")); its output:\n\(redacted(result.output))\n\(await diagnostics())"
        XCTFail(message, file: file, line: line)
        throw CommandFailed(description: "\(label) failed (details above)")
    }

    /// Waits (at most 60 s) for a started process and returns its status and output.
    private func finish(_ process: ChildProcess, _ output: URL) -> (status: Int32, output: String) {
        defer { try? FileManager.default.removeItem(at: output) }
        if !process.waitForExit(timeout: 60) { process.terminate() }
        return (process.terminationStatus ?? -1, (try? String(contentsOf: output, encoding: .utf8)) ?? "")
    }

    /// `redis-cli` as the `worker` user (the password through `REDISCLI_AUTH`, not the command line).
    private func redisCLI(_ command: [String]) throws -> (status: Int32, output: String) {
        let components = try RedisEndpoint(url: workerURL)
        let output = folder.appendingPathComponent("redis-cli-\(UUID().uuidString).out")
        let process = try ChildProcess(
            executable: "redis-cli",
            arguments: ["-h", "127.0.0.1", "-p", String(redis.port), "--user", "worker"] + command,
            streams: .file(output.path), environment: ["REDISCLI_AUTH": components.password ?? ""])
        return finish(process, output)
    }

    private func waitForRecord(newerThan version: Int64, _ what: String, timeout: Duration = .seconds(30)) async throws
        -> TokenRecord
    {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            if let record = try await store.record(Self.service), record.version > version, record.status == .ok {
                seenTokens.insert(record.accessToken)
                return record
            }
            try await Task.sleep(for: .milliseconds(50))
        }
        XCTFail(
            "waiting for \(what): no ok record newer than version \(version) within \(timeout)\n\(await diagnostics())")
        throw CommandFailed(description: "waiting for \(what) timed out (details above)")
    }

    /// Polls `condition` every 20 ms for up to 30 s while `processes` (which must not exit
    /// meanwhile) run; otherwise fails with their output.
    private func waitFor(_ what: String, processes: [(ChildProcess, URL)], condition: () async throws -> Bool)
        async throws
    {
        let deadline = ContinuousClock.now + .seconds(30)
        while ContinuousClock.now < deadline && processes.allSatisfy({ $0.0.isRunning }) {
            if try await condition() { return }
            try await Task.sleep(for: .milliseconds(20))
        }
        let outputs = processes.map { process, output in
            "pid \(process.pid) running=\(process.isRunning) status=\(process.terminationStatus.map(String.init) ?? "-"): \((try? String(contentsOf: output, encoding: .utf8)) ?? "")"
        }
        XCTFail("gave up waiting for \(what)\n\(outputs.joined(separator: "\n"))\n\(await diagnostics())")
        throw CommandFailed(description: "gave up waiting for \(what) (details above)")
    }

    /// `ACL LOG` as one dictionary per entry (fields `count`, `reason`, `context`, `object`, `username`, ...).
    private func aclLog() async throws -> [[String: String]] {
        let reply = try await adminClient.send("ACL", "LOG")
        return (reply.array ?? []).map { entry in
            let fields = entry.array ?? []
            var map: [String: String] = [:]
            for index in stride(from: 0, to: fields.count - 1, by: 2) {
                map[fields[index].string ?? ""] =
                    fields[index + 1].string ?? fields[index + 1].integer.map(String.init)
                    ?? fields[index + 1].description
            }
            return map
        }
    }

    /// The replicas' logs and Redis's ACL log, for a failure message.
    private func diagnostics() async -> String {
        var parts: [String] = []
        for id in replicas.keys.sorted() {
            let text = replicas[id].flatMap { try? String(contentsOf: $0.1, encoding: .utf8) } ?? ""
            parts.append("--- \(id) log:\n\(redacted(String(text.suffix(6_000))))")
        }
        let log = (try? await adminClient.send("ACL", "LOG").description) ?? "(ACL LOG unavailable)"
        parts.append("--- ACL LOG:\n\(log)")
        parts.append("--- redis-server log (tail):\n\(String(redis.log.suffix(3_000)))")
        return parts.joined(separator: "\n")
    }

    /// `text` with every access token seen and every JSON `access_token` value blanked out.
    private func redacted(_ text: String) -> String {
        var result = text
        for token in seenTokens where !token.isEmpty {
            result = result.replacingOccurrences(of: token, with: "<access token>")
        }
        return result.replacingOccurrences(
            of: #""access_token"\s*:\s*"[^"]*""#, with: #""access_token":"<redacted>""#, options: .regularExpression)
    }
}

/// A step of a multi-process test failed (already reported with its diagnostics): ends the test.
private struct CommandFailed: Error, CustomStringConvertible {
    let description: String
}
