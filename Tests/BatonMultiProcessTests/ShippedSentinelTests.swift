import BatonRedis
import BatonTestSupport
import BatonTokens
import Foundation
import XCTest

/// The shipped Sentinel deployment (`Deploy/sentinel/`) run from its own files: the compose
/// file's commands, `first-start.sh`, `redis.conf`, `sentinel.conf`, `users.acl` and
/// `baton.json.example`, with only host names, ports, container paths and passwords made local
/// (see ``LoopbackCompose``). The replicas sync as the shipped `replication` user, the Sentinels
/// monitor the master as the shipped `sentinel` user, a `kill -9` of the master makes them promote a
/// replica, the rotated refresh token that a replica acknowledged is on the new master, the shipped
/// `coordinator` user refreshes there, and the old master comes back as a replica.
///
/// One test-only administrator (`sentinel-test-admin`) is added to the ACL file to read `INFO`,
/// `CLIENT LIST` and `ACL LOG`: Redis logs every denied command there, including the Sentinels'.
final class ShippedSentinelTests: XCTestCase {
    private static let service = "sentinel-api"
    private static let master = "baton"
    private static let dataNodes = ["redis-1", "redis-2", "redis-3"]
    private static let sentinels = ["sentinel-1", "sentinel-2", "sentinel-3"]

    private var folder: URL!
    private var compose: LoopbackCompose!
    private var provider: FakeOAuthProvider!
    private var passwords: [String: String] = [:]
    private var adminPassword = ""
    private var clients: [String: RedisClient] = [:]
    private var outputs: [String] = []

    override func setUp() async throws {
        folder = FileManager.default.temporaryDirectory.appendingPathComponent("baton-sentinel-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        for name in ["coordinator", "worker", "replication", "sentinel", "requirepass"] {
            passwords[name] = Self.randomPassword()
        }
        adminPassword = Self.randomPassword()
        var ports: [String: Int] = [:]
        for node in Self.dataNodes { ports[node] = 6379 }
        for sentinel in Self.sentinels { ports[sentinel] = 26379 }
        compose = try LoopbackCompose(
            composeFile: ShippedDeployment.sentinelComposeFile, containerPorts: ports, values: passwords,
            aclAdditions: ["user sentinel-test-admin on >\(adminPassword) ~* &* +@all"],
            folder: folder.appendingPathComponent("compose"))
        provider = try FakeOAuthProvider.start(lifetime: 300)
    }

    override func tearDown() async throws {
        for client in clients.values { client.shutDown() }
        clients = [:]
        compose?.stopAll()
        compose = nil
        provider?.stop()
        if let folder { try? FileManager.default.removeItem(at: folder) }
    }

    func testFailoverWithTheShippedFiles() async throws {
        // The data nodes in compose's order: redis-1 first, the replicas point at it.
        for node in Self.dataNodes { try await compose.start(node) }
        try await eventually(
            "redis-2 and redis-3 replicate redis-1 as the shipped `replication` user", timeout: .seconds(60),
            diagnostics: { self.compose.diagnostics }
        ) {
            try await self.replicasOnline(at: "redis-1", expected: ["redis-2", "redis-3"])
        }
        for sentinel in Self.sentinels { try await compose.start(sentinel) }
        try await eventually(
            "every Sentinel monitors redis-1 with both replicas and the two other Sentinels", timeout: .seconds(60),
            diagnostics: { self.compose.diagnostics }
        ) {
            try await self.sentinelsAgree(master: "redis-1", replicas: 2)
        }
        try await eventually(
            "the Sentinels are logged in to redis-1 as the shipped `sentinel` user", timeout: .seconds(60),
            diagnostics: { self.compose.diagnostics }
        ) {
            try await self.clientUsers(at: "redis-1").filter { $0 == "sentinel" }.count >= 3
        }

        // Baton, configured from the shipped example (its redis_url through the Sentinels), seeds
        // and rotates a refresh token; the rotated one reaches both replicas.
        let config = try batonConfiguration()
        let tokenFile = folder.appendingPathComponent("refresh-token")
        try provider.seedRefreshToken().write(to: tokenFile, atomically: true, encoding: .utf8)
        try expectSuccess(
            "baton seed", baton(["seed", Self.service, "--refresh-token-file", tokenFile.path, "--config", config]))
        try expectSuccess("baton refresh --force", baton(["refresh", Self.service, "--force", "--config", config]))
        let keys = try TokenKeys(prefix: "oauth", service: Self.service)
        let before = try await record(at: "redis-1")
        let secretBefore = try await client("redis-1").send("GET", keys.secret).string
        XCTAssertNotNil(secretBefore, "no refresh token on redis-1 after baton refresh")
        try await eventually(
            "both replicas hold the rotated refresh token", timeout: .seconds(60),
            diagnostics: { self.compose.diagnostics }
        ) {
            for node in ["redis-2", "redis-3"] {
                guard try await self.client(node).send("GET", keys.secret).string == secretBefore else { return false }
            }
            return true
        }

        // The master dies.
        compose.kill9("redis-1")
        let newMaster = try await eventually(
            // A failover that fails (a split vote) is retried after twice failover-timeout.
            "the Sentinels promote redis-2 or redis-3 and re-point the other", timeout: .seconds(240),
            diagnostics: { self.compose.diagnostics }
        ) { () -> String? in
            guard let promoted = try await self.agreedMaster(), promoted != "redis-1" else { return nil }
            let other = promoted == "redis-2" ? "redis-3" : "redis-2"
            return try await self.replicasOnline(at: promoted, expected: [other]) ? promoted : nil
        }

        // What a replica acknowledged survived; the shipped coordinator refreshes on the new master.
        let after = try await record(at: newMaster)
        XCTAssertEqual(after.version, before.version, "the record on \(newMaster) is not the one redis-1 had")
        let secretAfter = try await client(newMaster).send("GET", keys.secret).string
        // Compared, not printed: the values are refresh tokens.
        XCTAssertTrue(secretAfter == secretBefore, "the rotated refresh token did not survive the failover")
        try expectSuccess(
            "baton refresh --force after the failover",
            baton(["refresh", Self.service, "--force", "--config", config], timeout: 90))
        let refreshed = try await record(at: newMaster)
        XCTAssertGreaterThan(refreshed.version, before.version, "no refresh reached \(newMaster)")
        try expectSuccess("baton status after the failover", baton(["status", "--config", config]))
        // The shipped worker user reads the token through the Sentinels too (ROLE included).
        let configured = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: config)))
        let coordinatorURL = (configured as? [String: Any])?["redis_url"] as? String ?? ""
        // The example leaves the password out of the URL (it comes from BATON_REDIS_PASSWORD).
        let workerURL = coordinatorURL.replacingOccurrences(
            of: "coordinator:@", with: "worker:\(passwords["worker"] ?? "")@")
        XCTAssertNotEqual(workerURL, coordinatorURL, "the example's redis_url logs in as the coordinator")
        let workerGet = try BatonExecutable.run(
            ["get", Self.service],
            environment: ["BATON_SENTINEL_PASSWORD": passwords["requirepass"] ?? "", "BATON_REDIS_URL": workerURL])
        outputs.append("$ baton get \(Self.service) (as worker) -> \(workerGet.status)")
        XCTAssertEqual(workerGet.status, 0, "the shipped worker user could not read the token through the Sentinels")

        // The old master comes back (compose restarts it) from its own copy of the configuration,
        // and the Sentinels make it a replica of the new master, recording that in its copy.
        try await compose.start("redis-1")
        try await eventually(
            "redis-1 returns as a replica of \(newMaster)", timeout: .seconds(120),
            diagnostics: { self.compose.diagnostics }
        ) {
            try await self.replicasOnline(
                at: newMaster, expected: ["redis-1", "redis-2", "redis-3"].filter { $0 != newMaster })
        }
        let copy = try String(
            contentsOf: compose.volume("redis-1").appendingPathComponent("redis.conf"), encoding: .utf8)
        XCTAssertTrue(
            copy.contains("replicaof 127.0.0.1 \(compose.port(newMaster))"),
            "Sentinel did not record redis-1's new role in its configuration copy:\n\(copy)")
        let resynced = try await record(at: "redis-1")
        XCTAssertEqual(resynced.version, refreshed.version, "redis-1 did not resync")

        // Nobody was refused anything, anywhere.
        for node in Self.dataNodes {
            let denials = try await client(node).send("ACL", "LOG").array ?? []
            XCTAssertTrue(denials.isEmpty, "ACL LOG of \(node) has denials: \(denials)\n\(compose.diagnostics)")
            XCTAssertFalse(compose.log(node).contains("NOPERM"), "\(node) logged NOPERM:\n\(compose.log(node))")
        }
        for sentinel in Self.sentinels {
            XCTAssertFalse(
                compose.log(sentinel).contains("NOPERM"), "\(sentinel) logged NOPERM:\n\(compose.log(sentinel))")
        }
        XCTAssertEqual(try provider.invalidGrants(), 0)
    }

    // MARK: - The Redis side

    /// A client for a data node as the test administrator, or for a Sentinel with its password.
    private func client(_ name: String) throws -> RedisClient {
        if let client = clients[name] { return client }
        let sentinel = Self.sentinels.contains(name)
        let client = RedisClient(
            endpoint: RedisEndpoint(
                transport: .tcp(host: "127.0.0.1", port: compose.port(name)),
                username: sentinel ? nil : "sentinel-test-admin",
                password: sentinel ? passwords["requirepass"] : adminPassword),
            options: RedisClientOptions(poolSize: 2))
        clients[name] = client
        return client
    }

    /// `INFO section` as a dictionary; empty when the node does not answer.
    private func info(_ name: String, _ section: String) async -> [String: String] {
        guard let text = try? await client(name).send("INFO", section).string else { return [:] }
        var fields: [String: String] = [:]
        for line in text.split(whereSeparator: \.isNewline) {
            guard let colon = line.firstIndex(of: ":") else { continue }
            fields[String(line[..<colon])] = String(line[line.index(after: colon)...])
        }
        return fields
    }

    /// Whether `master` is a master whose online replicas are exactly `expected` (by port), each
    /// logged in as the shipped `replication` user.
    private func replicasOnline(at master: String, expected: [String]) async throws -> Bool {
        let replication = await info(master, "replication")
        guard replication["role"] == "master" else { return false }
        let online = replication.filter { $0.key.hasPrefix("slave") && $0.value.contains("state=online") }.values
        let ports = Set(
            online.compactMap { line in
                line.split(separator: ",").first { $0.hasPrefix("port=") }.map { String($0.dropFirst(5)) }
            })
        guard ports == Set(expected.map { String(compose.port($0)) }) else { return false }
        let users = try await clientUsers(at: master, type: "replica")
        return users.count == expected.count && users.allSatisfy { $0 == "replication" }
    }

    /// The `user=` of each client connected to `node` (of `CLIENT LIST TYPE type`, or all).
    private func clientUsers(at node: String, type: String? = nil) async throws -> [String] {
        let command = type.map { RedisCommand("CLIENT", "LIST", "TYPE", $0) } ?? RedisCommand("CLIENT", "LIST")
        let list = try await client(node).send(command).string ?? ""
        return list.split(whereSeparator: \.isNewline).compactMap { line in
            line.split(separator: " ").first { $0.hasPrefix("user=") }.map { String($0.dropFirst(5)) }
        }
    }

    /// `SENTINEL MASTER` of `name` as a dictionary; empty when the Sentinel does not answer.
    private func sentinelMaster(_ sentinel: String) async -> [String: String] {
        guard let fields = try? await client(sentinel).send("SENTINEL", "MASTER", Self.master).array else { return [:] }
        var result: [String: String] = [:]
        for index in stride(from: 0, to: fields.count - 1, by: 2) {
            result[fields[index].string ?? ""] = fields[index + 1].string
        }
        return result
    }

    /// Whether every Sentinel sees `master` healthy at its loopback port, with `replicas` replicas
    /// and the two other Sentinels.
    private func sentinelsAgree(master: String, replicas: Int) async throws -> Bool {
        for sentinel in Self.sentinels {
            let state = await sentinelMaster(sentinel)
            guard state["flags"] == "master", state["port"] == String(compose.port(master)),
                state["num-slaves"] == String(replicas), state["num-other-sentinels"] == "2"
            else { return false }
        }
        return true
    }

    /// The data node every Sentinel names as master (`SENTINEL GET-MASTER-ADDR-BY-NAME`), once they
    /// agree and that node says it is master (`ROLE`).
    private func agreedMaster() async throws -> String? {
        var named: Set<String> = []
        for sentinel in Self.sentinels {
            guard
                let address = try? await client(sentinel).send("SENTINEL", "GET-MASTER-ADDR-BY-NAME", Self.master)
                    .array,
                address.count == 2, let port = address[1].string
            else { return nil }
            guard let node = Self.dataNodes.first(where: { String(compose.port($0)) == port }) else { return nil }
            named.insert(node)
        }
        guard named.count == 1, let node = named.first,
            (try? await client(node).send("ROLE").array?.first?.string) == "master"
        else { return nil }
        return node
    }

    /// The token record on `node`.
    private func record(at node: String) async throws -> TokenRecord {
        guard
            let record = try await TokenStore(client: client(node), prefix: "oauth", encryption: TestKeyring.encryption)
                .record(Self.service)
        else {
            XCTFail("no token record on \(node)\n\(compose.diagnostics)")
            throw CancellationError()
        }
        return record
    }

    // MARK: - Baton

    /// The shipped `baton.json.example` for this deployment with its passwords filled, its Redis
    /// URL through the local Sentinels, a local state folder, and the fake provider's service in
    /// place of the example's.
    private func batonConfiguration() throws -> String {
        let example = ShippedDeployment.sentinelComposeFile.deletingLastPathComponent()
            .appendingPathComponent("baton.json.example")
        let text = try ShippedDeployment.fillingPlaceholders(
            in: String(contentsOf: example, encoding: .utf8), values: passwords, file: example
        ).text
        guard var settings = try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any],
            let url = settings["redis_url"] as? String
        else {
            throw LoopbackCompose.Failure(description: "\(example.path) is not a JSON object with a redis_url")
        }
        XCTAssertGreaterThanOrEqual(
            (settings["persist_replicas"] as? Int) ?? 0, 1,
            "\(example.path): a rotated token must wait for a replica's acknowledgement (persist_replicas)")
        settings["redis_url"] = try compose.loopback(url)
        settings["state_dir"] = "state"
        settings["services"] = nil
        return try TestConfiguration(settings: settings)
            .service(Self.service, tokenURL: provider.tokenURL, secretFile: true, ["request_timeout": "10s"])
            .write(in: folder)
    }

    /// Runs `baton` with the environment the compose file's `.env` gives it (the encryption key
    /// comes from ``BatonExecutable``).
    private func baton(_ arguments: [String], timeout: Double = 60) throws -> (status: Int32, output: String) {
        let result = try BatonExecutable.run(
            arguments,
            environment: [
                "BATON_SENTINEL_PASSWORD": passwords["requirepass"] ?? "",
                "BATON_REDIS_PASSWORD": passwords["coordinator"] ?? "",
            ], timeout: timeout)
        outputs.append("$ baton \(arguments.joined(separator: " ")) -> \(result.status)\n\(redacted(result.output))")
        return result
    }

    /// Fails and ends the test unless the command exited 0.
    private func expectSuccess(
        _ label: String, _ result: (status: Int32, output: String), file: StaticString = #filePath, line: UInt = #line
    ) throws {
        guard result.status != 0 else { return }
        XCTFail(
            "\(label) exited \(result.status)\n\(outputs.joined(separator: "\n"))\n\(compose.diagnostics)", file: file,
            line: line)
        throw CancellationError()
    }

    /// `text` with token values blanked out.
    private func redacted(_ text: String) -> String {
        text.replacingOccurrences(
            of: #""(access_token|refresh_token)"\s*:\s*"[^"]*""#, with: #""$1":"<redacted>""#,
            options: .regularExpression)
    }

    private static func randomPassword() -> String {
        (UUID().uuidString + UUID().uuidString).replacingOccurrences(of: "-", with: "").lowercased()
    }
}
