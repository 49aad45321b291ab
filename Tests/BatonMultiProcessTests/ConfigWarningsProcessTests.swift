import BatonTestSupport
import Foundation
import XCTest

/// `baton config check` and `baton serve` with a configuration that works but should change
/// (`"encryption": "none"`, a password inline in `redis_url`), and one that names no key at all.
final class ConfigWarningsProcessTests: XCTestCase {
    private var folder: URL!
    private let inlinePassword = "hunter2-inline-\(UUID().uuidString)"
    /// No keyring from ``BatonExecutable``: these tests are about the file's `encryption`.
    private let noKeys = ["BATON_ENCRYPTION_KEYS": ""]

    override func setUpWithError() throws {
        folder = FileManager.default.temporaryDirectory.appendingPathComponent("baton-warnings-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
    }

    override func tearDown() {
        if let folder { try? FileManager.default.removeItem(at: folder) }
    }

    private func writeConfig(redisURL: String, encryption: Any?) throws -> String {
        var settings: [String: Any] = [:]
        settings["encryption"] = encryption
        let path = try TestConfiguration(redisURL: redisURL, settings: settings)
            .service("my-api", tokenURL: "http://127.0.0.1:9/token", secretFile: true)
            .write(in: folder)
        if encryption == nil {
            // write(in:) names the test keys file when the settings name none: take it out again.
            var object = try XCTUnwrap(
                JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: path))) as? [String: Any])
            object["encryption"] = nil
            try JSONSerialization.data(withJSONObject: object).write(to: URL(fileURLWithPath: path))
        }
        return path
    }

    /// Runs `baton config check PATH` with standard output and standard error apart.
    private func check(_ path: String) throws -> (status: Int32, stdout: String, stderr: String) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: BatonExecutable.path)
        process.arguments = ["config", "check", path]
        process.environment = ProcessInfo.processInfo.environment.merging(noKeys) { _, new in new }
        let out = Pipe()
        let err = Pipe()
        process.standardOutput = out
        process.standardError = err
        try process.run()
        let stdout = out.fileHandleForReading.readDataToEndOfFile()
        let stderr = err.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return (
            process.terminationStatus, String(decoding: stdout, as: UTF8.self), String(decoding: stderr, as: UTF8.self)
        )
    }

    func testConfigCheckPrintsWarningsOnStandardErrorAndSucceeds() throws {
        let path = try writeConfig(redisURL: "redis://baton:\(inlinePassword)@127.0.0.1:1/0", encryption: "none")
        let result = try check(path)
        XCTAssertEqual(result.status, 0, result.stdout + result.stderr)
        XCTAssertTrue(result.stdout.contains(": OK: 1 service"), result.stdout)
        XCTAssertFalse(result.stdout.contains("warning:"), result.stdout)
        let warnings = result.stderr.split(separator: "\n").filter { $0.hasPrefix("warning: ") }
        XCTAssertEqual(warnings.count, 2, result.stderr)
        XCTAssertTrue(
            result.stderr.contains(#"warning: encryption is "none": refresh tokens are stored in plain text"#),
            result.stderr)
        XCTAssertTrue(
            result.stderr.contains(
                "warning: redis_url has an inline password: move it to BATON_REDIS_PASSWORD or redis_password_file"),
            result.stderr)
        XCTAssertFalse((result.stdout + result.stderr).contains(inlinePassword), "the password was printed")

        // A configuration with keys and no inline password has nothing to say.
        let clean = try check(
            try writeConfig(
                redisURL: "redis://127.0.0.1:1/0", encryption: ["keys_file": TestConfiguration.keysFileName]))
        XCTAssertEqual(clean.status, 0, clean.stderr)
        XCTAssertEqual(clean.stderr, "")
    }

    func testNoKeyIsAProblemThatSaysHowToMakeOne() throws {
        let result = try check(try writeConfig(redisURL: "redis://127.0.0.1:1/0", encryption: nil))
        XCTAssertEqual(result.status, 2, result.stdout + result.stderr)
        for part in [
            "encryption: missing: refresh tokens are encrypted at rest by default",
            "baton keygen > /etc/baton/encryption-keys && chmod 600 /etc/baton/encryption-keys",
            #""encryption": "none""#,
        ] {
            XCTAssertTrue(result.stderr.contains(part), "'\(part)' missing from: \(result.stderr)")
        }
    }

    func testServeLogsTheWarningsAtEveryStart() async throws {
        let redis = try RedisServerProcess.start()
        defer { redis.stop() }
        let path = try writeConfig(redisURL: redis.url, encryption: "none")
        for start in 1...2 {
            let (serve, log) = try BatonExecutable.start(
                ["serve", "--config", path, "--id", "warned-\(start)"], environment: noKeys)
            defer { try? FileManager.default.removeItem(at: log) }
            let text = { (try? String(contentsOf: log, encoding: .utf8)) ?? "" }
            try await eventually("start \(start) logs the plain-text warning", diagnostics: text) {
                text().split(separator: "\n").contains {
                    $0.contains(#""event":"warning""#) && $0.contains(#""level":"warn""#)
                        && $0.contains(#"encryption is \"none\""#)
                }
            }
            serve.terminate()
        }
    }
}
