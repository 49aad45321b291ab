import BatonCommandLine
import BatonRedis
import BatonSupport
import BatonTestSupport
import Foundation
import XCTest

/// Promise 5 as a test: a full scenario with distinctive secrets (seed, refreshes with rotation,
/// forced refreshes, a provider failure, `invalid_grant` and a re-seed, `status`, `watch`, `get`,
/// `lock run`, `refresh`, `rekey`), then a search for every secret in every place one could leak
/// to. Only a record's `access_token` field (and `baton get`, whose job is to print it) may hold
/// an access token; nothing may hold anything else.
final class LeakHuntProcessTests: XCTestCase {
    private var folder: URL!
    private var processes: [ChildProcess] = []
    /// Every command's output, and which command it was.
    private var outputs: [(label: String, text: String)] = []
    /// `/proc/*/cmdline` of every process on the machine, read at several moments.
    private var argumentLists: [String] = []

    override func setUpWithError() throws {
        folder = FileManager.default.temporaryDirectory.appendingPathComponent("baton-leak-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
    }

    override func tearDown() {
        for process in processes where process.isRunning { process.terminate(grace: 5) }
        try? FileManager.default.removeItem(at: folder)
    }

    private func distinctive(_ kind: String) throws -> String {
        "\(kind)-LEAK-" + (try SecureRandom.bytes(12)).map { String(format: "%02x", $0) }.joined()
    }

    private func writeSecretFile(_ name: String, _ value: String) throws -> String {
        let path = folder.appendingPathComponent(name).path
        try value.write(toFile: path, atomically: true, encoding: .utf8)
        try FileManager.default.setAttributes([.posixPermissions: 0o600], ofItemAtPath: path)
        return path
    }

    /// Runs `baton` and keeps its output for the search.
    @discardableResult
    private func baton(_ label: String, _ arguments: [String], environment: [String: String]) throws -> (
        status: Int32, output: String
    ) {
        let run = try BatonExecutable.run(arguments, environment: environment)
        outputs.append((label, run.output))
        return run
    }

    private func snapshotArgumentLists() {
        let pids = (try? FileManager.default.contentsOfDirectory(atPath: "/proc"))?.filter { Int($0) != nil } ?? []
        for pid in pids {
            guard let data = FileManager.default.contents(atPath: "/proc/\(pid)/cmdline"), !data.isEmpty else {
                continue
            }
            argumentLists.append(String(decoding: data.map { $0 == 0 ? 0x20 : $0 }, as: UTF8.self))
        }
    }

    /// Every byte of a reply, as text (``RESPValue/description`` shortens long strings).
    private static func fullText(_ value: RESPValue) -> String {
        switch value {
        case .array(let elements): return elements.map(fullText).joined(separator: " ")
        case .bulk(let bytes): return String(decoding: bytes, as: UTF8.self)
        default: return value.description
        }
    }

    /// `text` without the values of `"access_token"` fields, quoted plainly or escaped once (JSON
    /// inside a string, as MONITOR shows script arguments).
    private static func withoutAccessTokenFields(_ text: String) -> String {
        text.replacingOccurrences(
            of: #"\\?"access_token\\?"\s*:\s*\\?"[^"\\]*\\?""#, with: "", options: .regularExpression)
    }

    func testNoSecretAppearsAnywhereButTheAccessTokenField() async throws {
        let redisPassword = try distinctive("redispw")
        let clientSecret = try distinctive("clientsecret")
        let fallbackSecret = try distinctive("fallbacksecret")
        let key = try EncryptionKey.generate(kid: "leak")
        let keyring = key.keyringEntry
        let keyMaterial = String(keyring.split(separator: ":", maxSplits: 1)[1])

        // Redis with a password (in its configuration file, not its arguments), logging every command.
        let redis = try RedisServerProcess.start(configuration: ["requirepass \(redisPassword)"])
        addTeardownBlock { redis.stop() }
        let inspector = try RedisClient(url: "redis://:\(redisPassword)@127.0.0.1:\(redis.port)/0")
        addTeardownBlock { inspector.shutDown() }
        try await inspector.send("CONFIG", "SET", "slowlog-log-slower-than", "0")
        try await inspector.send("CONFIG", "SET", "slowlog-max-len", "100000")
        let monitorLog = folder.appendingPathComponent("monitor.log").path
        let monitor = try ChildProcess(
            executable: "/usr/bin/redis-cli", arguments: ["-h", "127.0.0.1", "-p", String(redis.port), "MONITOR"],
            streams: .file(monitorLog), environment: ["REDISCLI_AUTH": redisPassword])
        processes.append(monitor)

        let provider = try FakeOAuthProvider.start(
            lifetime: 3, clients: ["\(FakeOAuthProvider.clientID):\(clientSecret)"])
        addTeardownBlock { provider.stop() }

        // The configuration: no password in the URL, the client secret in a 0600 file, the
        // fallback one in the environment, the keyring in the environment.
        let passwordFile = try writeSecretFile("redis-password", redisPassword)
        let secretFile = try writeSecretFile("leak-client-secret", clientSecret)
        var configuration = TestConfiguration(
            redisURL: "redis://127.0.0.1:\(redis.port)/0",
            settings: [
                "redis_password_file": passwordFile, "state_dir": folder.appendingPathComponent("state").path,
                "lock_ttl": "10s", "forced_refresh_min_interval": "1s",
            ])
        for service in ["leak-api", "leak-other"] {
            configuration = configuration.service(
                service, tokenURL: provider.tokenURL,
                [
                    "client_secret_file": secretFile, "client_secret_fallback_env": "LEAK_FALLBACK_SECRET",
                    "refresh_buffer": "1s", "request_timeout": "3s",
                ])
            configuration.services[service]?["client_secret_env"] = nil  // the file above instead
        }
        let config = try configuration.write(in: folder)
        let environment = [
            BatonDefaults.Environment.encryptionKeys: keyring, "LEAK_FALLBACK_SECRET": fallbackSecret,
        ]

        func seed(_ service: String) throws {
            let tokenFile = try writeSecretFile("seed-\(service)", try provider.seedRefreshToken())
            let seeded = try baton(
                "seed", ["seed", service, "--refresh-token-file", tokenFile, "--config", config],
                environment: environment)
            XCTAssertEqual(seeded.status, 0, seeded.output)
            try FileManager.default.removeItem(atPath: tokenFile)  // the operator's input, by design a secret
        }
        try seed("leak-api")
        try seed("leak-other")

        var serveLogs: [URL] = []
        for id in ["leak-1", "leak-2"] {
            let (process, log) = try BatonExecutable.start(
                ["serve", "--config", config, "--id", id], environment: environment)
            processes.append(process)
            serveLogs.append(log)
        }
        let (watch, watchLog) = try BatonExecutable.start(["watch", "--config", config], environment: environment)
        processes.append(watch)
        func logged(_ event: String) -> Int {
            serveLogs.map { (try? String(contentsOf: $0, encoding: .utf8)) ?? "" }.joined()
                .components(separatedBy: "\"event\":\"\(event)\"").count - 1
        }
        func serveDiagnostics() -> String {
            serveLogs.map { String(((try? String(contentsOf: $0, encoding: .utf8)) ?? "").suffix(3000)) }
                .joined(separator: "\n---\n")
        }
        try await eventually(
            "both services refresh with rotation", timeout: .seconds(60), diagnostics: serveDiagnostics
        ) {
            logged("refreshed") >= 4
        }
        snapshotArgumentLists()

        // A forced refresh through `baton get --newer-than`, and one in this process.
        let stored = try await inspector.get("oauth:{leak-api}:token")
        let record = try XCTUnwrap(stored)
        let version = try XCTUnwrap(
            (try JSONSerialization.jsonObject(with: Data(record)) as? [String: Any])?["version"] as? Int)
        try baton(
            "get", ["get", "leak-api", "--newer-than", String(version), "--wait", "20s", "--config", config],
            environment: environment)
        try baton("refresh", ["refresh", "leak-api", "--force", "--config", config], environment: environment)
        // A provider failure, then invalid_grant, then a re-seed.
        try provider.setMode("server_error", count: 1)
        try await eventually("a refresh fails", timeout: .seconds(30), diagnostics: serveDiagnostics) {
            logged("refresh_failed") >= 1
        }
        try provider.setMode("invalid_grant", count: 1)
        try await eventually(
            "invalid_grant puts a service in needs_reauth", timeout: .seconds(30),
            diagnostics: serveDiagnostics
        ) { logged("needs_reauth") >= 1 }
        try provider.reset()
        try baton("status", ["status", "--config", config], environment: environment)
        try baton("status --json", ["status", "--json", "--config", config], environment: environment)
        try seed("leak-api")
        try seed("leak-other")
        snapshotArgumentLists()
        try baton(
            "get --json", ["get", "leak-other", "--json", "--wait", "20s", "--config", config],
            environment: environment)
        try baton(
            "lock run", ["lock", "run", "leak-lock", "--", "/bin/true"],
            environment: environment.merging(
                [BatonDefaults.Environment.redisURL: "redis://:\(redisPassword)@127.0.0.1:\(redis.port)/0"]) { $1 })
        try baton("rekey", ["rekey", "--config", config], environment: environment)
        try baton("config check", ["config", "check", config], environment: environment)
        let before = logged("refreshed")
        try await eventually("refreshing goes on", timeout: .seconds(60), diagnostics: serveDiagnostics) {
            logged("refreshed") >= before + 4
        }
        snapshotArgumentLists()
        for process in processes { process.terminate(grace: 10) }
        for (index, log) in serveLogs.enumerated() {
            outputs.append(("serve \(index + 1)", (try? String(contentsOf: log, encoding: .utf8)) ?? ""))
        }
        outputs.append(("watch", (try? String(contentsOf: watchLog, encoding: .utf8)) ?? ""))

        // What Redis holds: every key, every type; a record without its access_token field.
        var redisContents: [String] = []
        let keys = try await inspector.send("KEYS", "*").array?.compactMap(\.string) ?? []
        for key in keys {
            let type = try await inspector.send("TYPE", key).string ?? ""
            let dump: RESPValue
            switch type {
            case "string": dump = try await inspector.send("GET", key)
            case "hash": dump = try await inspector.send("HGETALL", key)
            case "list": dump = try await inspector.send("LRANGE", key, "0", "-1")
            case "set": dump = try await inspector.send("SMEMBERS", key)
            case "stream": dump = try await inspector.send("XRANGE", key, "-", "+")
            default: dump = .status(type)
            }
            var text = "\(key) \(Self.fullText(dump))"
            if key.hasSuffix(":token"), let bytes = dump.bytes,
                var object = try JSONSerialization.jsonObject(with: Data(bytes)) as? [String: Any]
            {
                object["access_token"] = nil
                text = "\(key) \(String(decoding: try JSONSerialization.data(withJSONObject: object), as: UTF8.self))"
            }
            redisContents.append(text)
        }
        let slowlog = Self.fullText(try await inspector.send("SLOWLOG", "GET", "100000"))
        let monitored = (try? String(contentsOfFile: monitorLog, encoding: .utf8)) ?? ""
        // Files Baton left: the state folder (spool) and everything else in the test folder but
        // the inputs that hold secrets by design.
        let inputs: Set<String> = [passwordFile, secretFile, folder.appendingPathComponent("monitor.log").path]
        var files: [(String, String)] = []
        if let walker = FileManager.default.enumerator(atPath: folder.path) {
            for case let relative as String in walker {
                let path = folder.appendingPathComponent(relative).path
                var isDirectory: ObjCBool = false
                guard !inputs.contains(path), FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory),
                    !isDirectory.boolValue
                else { continue }
                files.append((relative, (try? String(contentsOfFile: path, encoding: .utf8)) ?? ""))
            }
        }

        // The secrets.
        let issued = try provider.issuedTokens(kind: "refresh_tokens")
        let accessTokens = try provider.issuedTokens(kind: "access_tokens")
        XCTAssertGreaterThanOrEqual(issued.count, 8, "the scenario rotated refresh tokens")
        XCTAssertGreaterThanOrEqual(accessTokens.count, 8)
        let secrets: [(kind: String, value: String)] =
            issued.map { ("refresh token", $0) }
            + [
                ("client secret", clientSecret), ("fallback client secret", fallbackSecret),
                ("encryption key", keyMaterial), ("Redis password", redisPassword),
            ]
        // Where an access token may appear: `baton get` prints it (its job); elsewhere only as the
        // value of a record's "access_token" field (records in Redis, in `baton refresh`'s output, in
        // the record JSON that MONITOR and SLOWLOG show as script arguments), which is removed first.
        var places: [(place: String, text: String, accessTokensAllowed: Bool)] = []
        for output in outputs {
            places.append(("output of baton \(output.label)", output.text, output.label.hasPrefix("get")))
        }
        places.append(("Redis keys and values", redisContents.joined(separator: "\n"), false))
        places.append(("redis-cli MONITOR", monitored, false))
        places.append(("SLOWLOG GET", slowlog, false))
        places.append(("/proc/*/cmdline", argumentLists.joined(separator: "\n"), false))
        for (name, text) in files { places.append(("file \(name)", text, false)) }

        func hits(in places: [(place: String, text: String, accessTokensAllowed: Bool)]) -> [String] {
            var hits: [String] = []
            for place in places {
                for secret in secrets where place.text.contains(secret.value) {
                    hits.append("\(secret.kind) in \(place.place)")
                }
                if !place.accessTokensAllowed {
                    let outsideRecords = Self.withoutAccessTokenFields(place.text)
                    for token in accessTokens where outsideRecords.contains(token) {
                        hits.append("access token in \(place.place)")
                    }
                }
            }
            return hits
        }
        // The search finds what it looks for: planted copies are reported, a record field is not.
        let planted = [
            ("a planted refresh token", "x \(issued[0]) y", false), ("a planted key", keyMaterial, false),
            ("a planted access token", #"{"token":"\#(accessTokens[0])"}"#, false),
            ("a record", #"{"access_token":"\#(accessTokens[0])"}"#, false),
        ]
        XCTAssertEqual(
            hits(in: planted),
            [
                "refresh token in a planted refresh token", "encryption key in a planted key",
                "access token in a planted access token",
            ])
        let hits = hits(in: places)
        XCTAssertEqual(hits, [], "secrets found")
        // The search can find things: the capture saw the records' access tokens, and the sealed
        // secrets went through it.
        XCTAssertTrue(accessTokens.contains { monitored.contains($0) }, "MONITOR captured the record writes")
        XCTAssertTrue(monitored.contains("A256GCM"), "MONITOR captured the sealed secrets")
        XCTAssertTrue(slowlog.contains("EVALSHA") || slowlog.contains("evalsha"), "SLOWLOG captured the scripts")
        XCTAssertGreaterThan(argumentLists.count, 10)
        XCTAssertTrue(argumentLists.contains { $0.contains("serve --config") }, "the argument lists include baton's")
        print(
            "leak hunt: \(secrets.count) secrets and \(accessTokens.count) access tokens searched in \(places.count) places, \(monitored.count) bytes of MONITOR"
        )
    }
}
