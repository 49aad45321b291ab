import BatonTestSupport
import Foundation
import XCTest

/// `baton refresh` with an out-of-date primary client secret and the provider's secret as fallback.
final class ClientSecretFallbackProcessTests: XCTestCase {
    func testRefreshFallsBackAndRecordsIt() throws {
        let redis = try RedisServerProcess.start()
        let provider = try FakeOAuthProvider.start(lifetime: 60)
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("baton-fb-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        addTeardownBlock {
            provider.stop()
            redis.stop()
            try? FileManager.default.removeItem(at: folder)
        }
        let oldSecret = "old-rotated-out-secret"
        try oldSecret.write(to: folder.appendingPathComponent("old-secret"), atomically: true, encoding: .utf8)
        try FileManager.default.setAttributes(
            [.posixPermissions: 0o600], ofItemAtPath: folder.appendingPathComponent("old-secret").path)
        // write(in:) puts the provider's secret in `client-secret`: it is the fallback here.
        let config = try TestConfiguration(redisURL: redis.url, settings: ["state_dir": "state"])
            .service(
                "my-api", tokenURL: provider.tokenURL, secretFile: true,
                ["client_secret_file": "old-secret", "client_secret_fallback_file": "client-secret"]
            )
            .write(in: folder)
        let tokenFile = folder.appendingPathComponent("rt")
        try provider.seedRefreshToken().write(to: tokenFile, atomically: true, encoding: .utf8)
        let seeded = try BatonExecutable.run([
            "seed", "my-api", "--refresh-token-file", tokenFile.path, "--config", config,
        ])
        XCTAssertEqual(seeded.status, 0, seeded.output)

        let refreshed = try BatonExecutable.run(["refresh", "my-api", "--config", config])
        XCTAssertEqual(refreshed.status, 0, refreshed.output)
        XCTAssertFalse(refreshed.output.contains(oldSecret), refreshed.output)
        XCTAssertFalse(refreshed.output.contains(FakeOAuthProvider.clientSecret), refreshed.output)
        XCTAssertEqual(try provider.tokenRequests(), 2, "invalid_client with the primary, success with the fallback")
        XCTAssertEqual(try provider.invalidGrants(), 0)

        let events = try RedisCLI.run(port: redis.port, ["XRANGE", "oauth:{my-api}:events", "-", "+"])
        XCTAssertTrue(events.output.contains("client_secret_fallback_used"), events.output)
        XCTAssertFalse(events.output.contains(oldSecret), events.output)
        XCTAssertFalse(events.output.contains(FakeOAuthProvider.clientSecret), events.output)
    }
}
