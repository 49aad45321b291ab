import BatonCommandLine
import BatonRedis
import BatonTestSupport
import Foundation
import XCTest

/// docs/SECURITY.md's bad-input table, against real `baton` processes, a real redis-server and
/// the fake provider: every bad input gets a clear error, no crash, no quoted secret, no provider
/// call it does not justify, and the other services keep being served.
final class BadInputProcessTests: XCTestCase {
    private var redis: RedisServerProcess!
    private var provider: FakeOAuthProvider!
    private var client: RedisClient!
    private var folder: URL!
    private var serveLogs: [URL] = []

    /// One provider client per service (the service's name), so calls are counted per service.
    private let services = ["healthy", "garbled-record", "garbled-secret", "hash-token", "list-secret"]
    private let marker = "SECRET-MARKER-9f3e"

    override func setUpWithError() throws {
        redis = try RedisServerProcess.start()
        provider = try FakeOAuthProvider.start(
            lifetime: 4, clients: services.map { "\($0):\(FakeOAuthProvider.clientSecret)" })
        client = try RedisClient(url: redis.url)
        folder = FileManager.default.temporaryDirectory.appendingPathComponent("baton-bad-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
    }

    override func tearDown() {
        client?.shutDown()
        provider?.stop()
        redis?.stop()
        for log in serveLogs { try? FileManager.default.removeItem(at: log) }
        try? FileManager.default.removeItem(at: folder)
    }

    private func writeConfig() throws -> String {
        var configuration = TestConfiguration(redisURL: redis.url, settings: ["state_dir": "state"])
        for service in services {
            configuration = configuration.service(
                service, tokenURL: provider.tokenURL, secretFile: true, ["client_id": service, "refresh_buffer": "2s"])
        }
        return try configuration.write(in: folder)
    }

    private func seedAll(config: String) throws {
        for service in services {
            let file = folder.appendingPathComponent("rt-\(service)")
            try provider.seedRefreshToken(clientID: service).write(to: file, atomically: true, encoding: .utf8)
            let seeded = try BatonExecutable.run([
                "seed", service, "--refresh-token-file", file.path, "--config", config,
            ])
            XCTAssertEqual(seeded.status, 0, seeded.output)
        }
    }

    private func calls(_ service: String) throws -> Int {
        let byClient = try provider.stats()["by_client"] as? [String: [String: Int]] ?? [:]
        return byClient[service]?["calls"] ?? 0
    }

    private func startServe(_ config: String) throws -> ChildProcess {
        let (process, log) = try BatonExecutable.start(["serve", "--config", config, "--id", "bad-input"])
        serveLogs.append(log)
        addTeardownBlock { if process.isRunning { process.terminate(grace: 5) } }
        return process
    }

    private func serveLog() -> String {
        serveLogs.map { (try? String(contentsOf: $0, encoding: .utf8)) ?? "" }.joined(separator: "\n")
    }

    private func logLines(_ event: String, _ service: String) -> [String] {
        serveLog().split(separator: "\n").map(String.init).filter {
            $0.contains("\"event\":\"\(event)\"") && $0.contains("\"service\":\"\(service)\"")
        }
    }

    /// Token records and secret envelopes edited into garbage, and keys of the wrong Redis type:
    /// `get`, `status`, `refresh` and `serve` report them without quoting them, never call the
    /// provider for them nor overwrite them, and `serve` keeps refreshing the healthy service.
    func testGarbageAndWrongTypesInRedisAreReportedAndServeKeepsServingTheRest() async throws {
        let config = try writeConfig()
        try seedAll(config: config)
        let garbage = "{\"access_token\": \(marker)"
        try await client.send("SET", "oauth:{garbled-record}:token", garbage)
        try await client.send("SET", "oauth:{garbled-secret}:secret", "{\"v\":1,\"rt\":\"\(marker)")
        try await client.send("HSET", "oauth:{hash-token}:token", "access_token", marker)
        try await client.send("DEL", "oauth:{list-secret}:secret")
        try await client.send("RPUSH", "oauth:{list-secret}:secret", marker)

        var outputs: [String] = []
        let get = try BatonExecutable.run(["get", "garbled-record", "--wait", "0", "--config", config])
        outputs.append(get.output)
        XCTAssertEqual(get.status, ExitCode.failure.rawValue, get.output)
        XCTAssertTrue(get.output.contains("the token record of 'garbled-record' is not valid"), get.output)
        let wrongType = try BatonExecutable.run(["get", "hash-token", "--wait", "0", "--config", config])
        outputs.append(wrongType.output)
        XCTAssertEqual(wrongType.status, ExitCode.failure.rawValue, wrongType.output)
        XCTAssertTrue(wrongType.output.contains("WRONGTYPE"), wrongType.output)
        for service in ["garbled-record", "garbled-secret", "hash-token", "list-secret"] {
            let refresh = try BatonExecutable.run(["refresh", service, "--config", config])
            outputs.append(refresh.output)
            XCTAssertEqual(refresh.status, ExitCode.failure.rawValue, "\(service): \(refresh.output)")
        }
        XCTAssertTrue(outputs[2].contains("the token record of 'garbled-record' is not valid"), outputs[2])
        XCTAssertTrue(outputs[3].contains("corrupt secret"), outputs[3])
        XCTAssertTrue(outputs[4].contains("WRONGTYPE") && outputs[5].contains("WRONGTYPE"), outputs.joined())
        let status = try BatonExecutable.run(["status", "--config", config])
        outputs.append(status.output)
        XCTAssertEqual(status.status, 0, status.output)
        for service in services { XCTAssertTrue(status.output.contains(service), status.output) }
        let garbledRow = status.output.split(separator: "\n").first { $0.hasPrefix("garbled-record") } ?? ""
        XCTAssertTrue(garbledRow.contains("corrupt_record"), status.output)

        let serve = try startServe(config)
        try await eventually(
            "the healthy service is refreshed twice and each broken one fails twice", timeout: .seconds(60),
            diagnostics: serveLog
        ) {
            logLines("refreshed", "healthy").count >= 2
                && ["garbled-record", "hash-token", "list-secret"].allSatisfy {
                    logLines("refresh_failed", $0).count >= 2
                }
                // An unreadable secret needs a human: the service is left alone until it changes.
                && logLines("unreadable_secret", "garbled-secret").count >= 1
        }
        XCTAssertTrue(serve.isRunning, "serve is still running")
        XCTAssertTrue(logLines("unreadable_secret", "garbled-secret").allSatisfy { $0.contains("corrupt secret") })
        XCTAssertTrue(logLines("refresh_failed", "hash-token").allSatisfy { $0.contains("WRONGTYPE") })

        for service in ["garbled-record", "garbled-secret", "hash-token", "list-secret"] {
            XCTAssertEqual(try calls(service), 0, "\(service): the provider was called")
        }
        XCTAssertGreaterThanOrEqual(try calls("healthy"), 2)
        let record = try await client.send("GET", "oauth:{garbled-record}:token").string
        let secret = try await client.send("GET", "oauth:{garbled-secret}:secret").string
        let types = [
            try await client.send("TYPE", "oauth:{hash-token}:token").string,
            try await client.send("TYPE", "oauth:{list-secret}:secret").string,
        ]
        XCTAssertEqual(record, garbage, "overwritten")
        XCTAssertEqual(secret, "{\"v\":1,\"rt\":\"\(marker)", "overwritten")
        XCTAssertEqual(types, ["hash", "list"])
        for text in outputs + [serveLog()] { XCTAssertFalse(text.contains(marker), "quoted: \(text)") }

        // The services registry of the wrong type: `status` (which reads it) says so; serve,
        // which takes its services from the configuration, goes on.
        try await client.send("DEL", "oauth:services")
        try await client.send("SET", "oauth:services", marker)
        let registry = try BatonExecutable.run(["status", "--config", config])
        XCTAssertEqual(registry.status, ExitCode.failure.rawValue, registry.output)
        XCTAssertTrue(registry.output.contains("SMEMBERS") && registry.output.contains("WRONGTYPE"), registry.output)
        XCTAssertFalse(registry.output.contains(marker))
        let before = logLines("refreshed", "healthy").count
        try await eventually("serve refreshes on", timeout: .seconds(30), diagnostics: serveLog) {
            logLines("refreshed", "healthy").count > before
        }
        XCTAssertTrue(serve.isRunning)
    }

    /// Names that could break out of a key's hash tag, forge a log line or flood a terminal:
    /// refused by every command with exit 2, and dropped (never echoed) in forced-refresh requests.
    func testServiceNamesWithBracesColonsSpacesNewlinesAndTenKilobytesAreRefused() async throws {
        let config = try writeConfig()
        try seedAll(config: config)
        let tenKilobytes = String(repeating: "n", count: 10 * 1024)
        let names = ["{healthy}", "a:b", "my api", "line\nbreak", "\u{1B}[31mred", tenKilobytes]
        let tokenFile = folder.appendingPathComponent("rt-healthy").path
        for name in names {
            for arguments in [
                ["get", name, "--wait", "0"], ["status", name], ["seed", name, "--refresh-token-file", tokenFile],
            ] {
                let run = try BatonExecutable.run(arguments + ["--config", config])
                let shown = String(name.prefix(20))
                XCTAssertEqual(run.status, ExitCode.usage.rawValue, "\(arguments[0]) \(shown): \(run.output)")
                XCTAssertTrue(
                    run.output.contains("is not allowed in a service name")
                        || run.output.contains("has at most 128 characters"), "\(arguments[0]) \(shown): \(run.output)")
                XCTAssertFalse(run.output.contains("\u{1B}"), "a raw ESC reached the terminal: \(run.output)")
            }
        }
        let registered = try await client.send("SCARD", "oauth:services").integer
        XCTAssertEqual(registered, Int64(services.count), "nothing added")

        // In a configuration: every bad name is a problem of `config check`.
        var configuration = TestConfiguration(redisURL: redis.url)
        for name in names { configuration = configuration.service(name, tokenURL: provider.tokenURL, secretFile: true) }
        let weird = try configuration.write(in: folder, name: "weird.json")
        let check = try BatonExecutable.run(["config", "check", weird])
        XCTAssertEqual(check.status, ExitCode.usage.rawValue, check.output)
        XCTAssertTrue(check.output.contains("has \(names.count) problems"), check.output)
        XCTAssertFalse(check.output.contains("\u{1B}"), check.output)

        // In forced-refresh requests: answered or dropped, never echoed, no provider call.
        let serve = try startServe(config)
        try await eventually("the healthy service is refreshed", timeout: .seconds(30), diagnostics: serveLog) {
            !logLines("refreshed", "healthy").isEmpty
        }
        let before = try services.map(calls).reduce(0, +)
        for name in names {
            let entry = try JSONSerialization.data(withJSONObject: ["service": name, "version": 1])
            try await client.send("LPUSH", "oauth:refresh-requests", Array(entry))
        }
        func count(_ event: String) -> Int { serveLog().components(separatedBy: "\"event\":\"\(event)\"").count - 1 }
        try await eventually("every request was taken off the lists", timeout: .seconds(30), diagnostics: serveLog) {
            let pending = try await client.send("LLEN", "oauth:refresh-requests").integer ?? -1
            let taken = try await client.send("LLEN", "{oauth:refresh-requests}:processing:bad-input").integer ?? -1
            return pending == 0 && taken == 0
                && count("request_unknown_service") + count("request_dropped") == names.count
        }
        XCTAssertEqual(count("request_dropped"), 1, "the 10 KB request is dropped as oversized")
        XCTAssertTrue(serveLog().contains("oversized"), serveLog())
        XCTAssertEqual(count("request_unknown_service"), names.count - 1)
        XCTAssertFalse(serveLog().contains(String(repeating: "n", count: 200)), "a name was echoed")
        XCTAssertFalse(serveLog().contains("\u{1B}"), "a raw ESC in the log")
        XCTAssertFalse(serveLog().contains("line\nbreak"), "a raw newline in the log")
        XCTAssertTrue(serve.isRunning)
    }

    /// ESC sequences, carriage returns and bells in arguments come back escaped in error
    /// messages, whichever error path prints them.
    func testControlCharactersInArgumentsAreEscapedInErrors() throws {
        let config = try writeConfig()
        let hostile = "\u{1B}]0;owned\u{07}\u{1B}[2J\r"
        for arguments in [
            ["get", hostile, "--config", config], ["get", "healthy", "--wait", hostile, "--config", config],
            [hostile], ["status", "--\(hostile)"],
            ["seed", "healthy", "--refresh-token-file", hostile, "--config", config],
        ] {
            let run = try BatonExecutable.run(arguments)
            XCTAssertNotEqual(run.status, 0, "\(arguments): \(run.output)")
            for raw in ["\u{1B}", "\u{07}", "\r"] {
                XCTAssertFalse(run.output.contains(raw), "\(arguments) printed a raw control character: \(run.output)")
            }
            XCTAssertTrue(run.output.contains("\\u{1B}]0;owned\\u{7}"), "\(arguments): \(run.output)")
        }
    }

    /// Provider errors in the words of what was attempted: a code alone is printed once; a
    /// rejected authorization code is not "provider unavailable"; a mismatching redirect URI is
    /// not a client-credential problem.
    func testProviderErrorsAreClassifiedTruthfully() throws {
        let config = try writeConfig()
        try seedAll(config: config)
        try provider.setMode("invalid_grant_bare", count: 1)
        let bare = try BatonExecutable.run(["refresh", "healthy", "--force", "--config", config])
        XCTAssertEqual(bare.status, ExitCode.needsReauthorization.rawValue, bare.output)
        XCTAssertTrue(bare.output.contains("(invalid_grant: no error_description)"), bare.output)
        XCTAssertFalse(bare.output.contains("invalid_grant: invalid_grant"), bare.output)

        let redirect = "http://localhost:9/cb"
        let codeFile = folder.appendingPathComponent("code")
        func seedWithCode(redirectURI: String) throws -> (status: Int32, output: String) {
            try BatonExecutable.run([
                "seed", "healthy", "--authorization-code-file", codeFile.path, "--redirect-uri", redirectURI,
                "--config", config,
            ])
        }
        let code = try provider.issueCode(challenge: nil, redirectURI: redirect, clientID: "healthy")
        try code.write(to: codeFile, atomically: true, encoding: .utf8)
        XCTAssertEqual(try seedWithCode(redirectURI: redirect).status, 0)
        let reused = try seedWithCode(redirectURI: redirect)
        XCTAssertEqual(reused.status, ExitCode.needsReauthorization.rawValue, reused.output)
        XCTAssertTrue(reused.output.contains("the provider rejected the authorization code"), reused.output)
        XCTAssertFalse(reused.output.contains("unavailable"), reused.output)
        XCTAssertFalse(reused.output.contains("refresh token"), reused.output)

        let other = try provider.issueCode(challenge: nil, redirectURI: redirect, clientID: "healthy")
        try other.write(to: codeFile, atomically: true, encoding: .utf8)
        let mismatch = try seedWithCode(redirectURI: "http://localhost:9/elsewhere")
        XCTAssertEqual(mismatch.status, ExitCode.usage.rawValue, mismatch.output)
        XCTAssertTrue(
            mismatch.output.contains("invalid_request (HTTP 400): Mismatching redirect URI."), mismatch.output)
        XCTAssertTrue(mismatch.output.contains("--redirect-uri"), mismatch.output)
        XCTAssertFalse(mismatch.output.contains("client secret"), mismatch.output)
        for secret in [code, other, FakeOAuthProvider.clientSecret] + (try provider.issuedTokens()) {
            XCTAssertFalse((bare.output + reused.output + mismatch.output).contains(secret), "a secret was printed")
        }
    }
}
