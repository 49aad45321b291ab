import BatonCommandLine
import BatonRedis
import BatonTestSupport
import Foundation
import XCTest

/// `rediss://` and its `tls_*` parameters through every way a URL reaches `baton`: `--redis`,
/// `BATON_REDIS_URL` and `redis_url`, with the refresh path end to end over TLS.
final class TLSProcessTests: XCTestCase {
    func testTheURLWorksFromTheFlagTheEnvironmentAndTheConfiguration() throws {
        let redis = try RedisServerProcess.start(tls: .init(clientAuthentication: .required))
        let provider = try FakeOAuthProvider.start(lifetime: 60)
        addTeardownBlock {
            provider.stop()
            redis.stop()
        }
        let url = redis.tlsURL()
        XCTAssertTrue(url.contains("tls_cert_file="), url)

        let flag = try BatonExecutable.run(["ping", "--count", "3", "--redis", url])
        XCTAssertEqual(flag.status, 0, flag.output)
        let environment = try BatonExecutable.run(["ping", "--count", "3"], environment: ["BATON_REDIS_URL": url])
        XCTAssertEqual(environment.status, 0, environment.output)

        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("baton-tls-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        addTeardownBlock { try? FileManager.default.removeItem(at: folder) }
        let config = try TestConfiguration(
            redisURL: url, settings: ["state_dir": folder.appendingPathComponent("state").path]
        )
        .service("my-api", tokenURL: provider.tokenURL, secretFile: true, ["refresh_buffer": "5s"])
        .write(in: folder)
        let tokenFile = folder.appendingPathComponent("refresh-token")
        try provider.seedRefreshToken().write(to: tokenFile, atomically: true, encoding: .utf8)
        let seeded = try BatonExecutable.run([
            "seed", "my-api", "--refresh-token-file", tokenFile.path, "--config", config,
        ])
        XCTAssertEqual(seeded.status, 0, seeded.output)
        let refreshed = try BatonExecutable.run(["refresh", "my-api", "--config", config])
        XCTAssertEqual(refreshed.status, 0, refreshed.output)
        let record = try JSONSerialization.jsonObject(with: Data(refreshed.output.utf8)) as? [String: Any]
        XCTAssertNotNil(record?["access_token"] as? String, refreshed.output)
        XCTAssertEqual(try provider.tokenRequests(), 1)
        XCTAssertEqual(try provider.invalidGrants(), 0)

        // A bad CA is reported with the host and the reason, and exits non-zero.
        let certificates = try TestCertificates.shared()
        let wrong = redis.tlsURL(
            TLSURLParameters(
                caFile: certificates.otherCACertificate, certificateFile: certificates.client.certificate,
                keyFile: certificates.client.privateKey))
        let refused = try BatonExecutable.run(["ping", "--redis", wrong])
        XCTAssertNotEqual(refused.status, 0)
        XCTAssertTrue(refused.output.contains("127.0.0.1:\(redis.port)"), refused.output)
        XCTAssertTrue(refused.output.contains("certificate verification failed"), refused.output)
    }
}
