import BatonRedis
import BatonTestSupport
import BatonTokens
import Foundation
import XCTest

/// A Redis started as docker-compose.yml ships it (its command, `Deploy/redis/users.acl`) keeps
/// what Baton's scripts wrote across a `kill -9` and a restart.
///
/// Redis 7 writes a script's effects to the append-only file as a `MULTI`/`EXEC` transaction, and
/// when it loads that file it re-checks each transaction's commands against the `default` user's
/// permissions (redis/redis#14541, fixed only in later releases): with a `default` user that may
/// run nothing, every token record and refresh token written by a script is silently dropped at
/// restart. The shipped file gives `default` every permission but keeps it `off`, so no client can
/// log in as it.
final class ShippedRestartTests: XCTestCase {
    private static let service = "restart-api"

    private var folder: URL!
    private var redis: RedisServerProcess!
    private var provider: FakeOAuthProvider!
    private var admin: RedisClient!

    override func setUp() async throws {
        folder = FileManager.default.temporaryDirectory.appendingPathComponent("baton-restart-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        provider = try FakeOAuthProvider.start(lifetime: 300)
    }

    override func tearDown() async throws {
        admin?.shutDown()
        provider?.stop()
        redis?.stop()
        if let folder { try? FileManager.default.removeItem(at: folder) }
    }

    private var logTail: String { String(redis.log.suffix(4_000)) }

    func testScriptWritesSurviveAKill9AndRestart() async throws {
        let passwords = ["coordinator": UUID().uuidString, "worker": UUID().uuidString]
        let adminPassword = UUID().uuidString
        let acl = try ShippedDeployment.aclFileCopy(
            in: folder, passwords: passwords, extraLines: ["user restart-test-admin on >\(adminPassword) ~* &* +@all"])
        var arguments = try ShippedDeployment.redisCommandArguments()
        guard let aclOption = arguments.firstIndex(of: "--aclfile"), aclOption + 1 < arguments.count else {
            throw ShippedDeployment.ReadError(
                description: "docker-compose.yml's redis command loads no --aclfile FILE: \(arguments)")
        }
        arguments[aclOption + 1] = acl.path
        redis = try RedisServerProcess.start(arguments: arguments)
        admin = try RedisClient(url: redis.url(username: "restart-test-admin", password: adminPassword))

        // The seed and persist scripts write the record and the refresh token.
        let config = try TestConfiguration(
            redisURL: redis.url(username: "coordinator", password: passwords["coordinator"]),
            settings: ["state_dir": "state"]
        )
        .service(Self.service, tokenURL: provider.tokenURL, secretFile: true)
        .write(in: folder)
        let tokenFile = folder.appendingPathComponent("refresh-token")
        try provider.seedRefreshToken().write(to: tokenFile, atomically: true, encoding: .utf8)
        let seed = try BatonExecutable.run([
            "seed", Self.service, "--refresh-token-file", tokenFile.path, "--config", config,
        ])
        XCTAssertEqual(seed.status, 0, "baton seed: \(seed.output)")
        let refresh = try BatonExecutable.run(["refresh", Self.service, "--force", "--config", config])
        XCTAssertEqual(refresh.status, 0, "baton refresh --force exited \(refresh.status)")
        let keys = try TokenKeys(prefix: "oauth", service: Self.service)
        let store = TokenStore(client: admin, prefix: "oauth", encryption: TestKeyring.encryption)
        let before = try await store.record(Self.service)
        let secretBefore = try await admin.send("GET", keys.secret).string
        XCTAssertNotNil(before, "no token record after baton refresh")
        XCTAssertNotNil(secretBefore, "no refresh token after baton refresh")

        redis.kill9()
        try redis.startAgain()

        let after = try await store.record(Self.service)
        XCTAssertEqual(after?.version, before?.version, "the token record did not survive the restart\n\(logTail)")
        // Compared, not printed: the values are refresh tokens.
        let secretAfter = try await admin.send("GET", keys.secret).string
        XCTAssertTrue(secretAfter == secretBefore, "the refresh token did not survive the restart\n\(logTail)")
        XCTAssertFalse(redis.log.contains("NOPERM"), "Redis refused part of its append-only file:\n\(logTail)")
    }
}
