import BatonCommandLine
import BatonRedis
import BatonSupport
import BatonTestSupport
import BatonTokens
import Foundation
import XCTest

/// Alert webhooks end to end: three `baton serve` replicas on one redis-server, the fake provider
/// and a real webhook receiver (`Tests/Support/webhook_receiver.py`). Each event is delivered once
/// across the replicas, signed, retried while the receiver fails, and holds no secret.
final class AlertWebhookProcessTests: XCTestCase {
    private let secretVariable = "BATON_TEST_WEBHOOK_SECRET"
    private let secret = "whsec-\(UUID().uuidString)"
    private var redis: RedisServerProcess!
    private var provider: FakeOAuthProvider!
    private var receiver: WebhookReceiver!
    private var client: RedisClient!
    private var store: TokenStore!
    private var folder: URL!
    private var config = ""
    private var replicas: [(ChildProcess, URL)] = []
    private var started = Date()

    /// Redis, the provider (tokens living `lifetime` s, refreshed 2 s ahead), the receiver, one
    /// seeded service `crm`, and three replicas sending webhooks to the receiver.
    private func start(lifetime: Double = 4) async throws {
        started = Date()
        redis = try RedisServerProcess.start()
        provider = try FakeOAuthProvider.start(lifetime: lifetime)
        receiver = try WebhookReceiver(secret: secret)
        client = try RedisClient(url: redis.url)
        store = TokenStore(client: client, prefix: "oauth", encryption: TestKeyring.encryption)
        folder = FileManager.default.temporaryDirectory.appendingPathComponent("baton-alerts-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        config = try TestConfiguration(
            redisURL: redis.url,
            settings: [
                "lock_ttl": "5s", "lock_wait": "2s", "state_dir": "state",
                "alerts": [
                    "webhook_url": receiver.url, "secret_env": secretVariable, "refresh_failing_after": 3,
                    "timeout": "3s",
                ],
            ]
        )
        .service(
            "crm", tokenURL: provider.tokenURL, secretFile: true, ["refresh_buffer": "2s", "request_timeout": "3s"]
        )
        .write(in: folder)
        addTeardownBlock { [self] in
            for (process, log) in replicas {
                process.terminate(grace: 5)
                try? FileManager.default.removeItem(at: log)
            }
            client.shutDown()
            receiver.stop()
            provider.stop()
            redis.stop()
            try? FileManager.default.removeItem(at: folder)
        }
        let tokenFile = folder.appendingPathComponent("rt")
        try provider.seedRefreshToken().write(to: tokenFile, atomically: true, encoding: .utf8)
        let seeded = try BatonExecutable.run(
            ["seed", "crm", "--refresh-token-file", tokenFile.path, "--config", config],
            environment: [secretVariable: secret])
        XCTAssertEqual(seeded.status, 0, seeded.output)
        for index in 1...3 {
            replicas.append(
                try BatonExecutable.start(
                    ["serve", "--config", config, "--id", "replica-\(index)"], environment: [secretVariable: secret]))
        }
    }

    private func logs() -> [String] {
        replicas.map { (try? String(contentsOf: $0.1, encoding: .utf8)) ?? "" }
    }

    private func diagnostics() -> String {
        let received =
            (try? receiver.received().map { "\($0.status) \(String(decoding: $0.body, as: UTF8.self))" }) ?? []
        return "received:\n\(received.joined(separator: "\n"))\nreplica logs:\n"
            + logs().map { String($0.suffix(6000)) }.joined(separator: "\n---\n")
    }

    /// Waits for an `ok` record of `crm` newer than `version`; returns its version.
    @discardableResult
    private func okVersion(above version: Int64, _ what: String) async throws -> Int64 {
        try await eventually(what, timeout: .seconds(60), diagnostics: diagnostics) { () async throws -> Int64? in
            guard let record = try await self.store.record("crm"), record.status == .ok, record.version > version
            else { return nil }
            return record.version
        }
    }

    private func events(_ deliveries: [WebhookReceiver.Delivery]) -> [String] {
        deliveries.map { $0.json["event"] as? String ?? "?" }
    }

    private func alertField(_ field: String) async throws -> String? {
        try await client.send("HGET", "oauth:{crm}:alert", field).string
    }

    /// Each delivery is signed under the shared key (checked by the receiver with Python's hmac and
    /// here with Baton's), carries a fresh timestamp, the documented fields, and no secret.
    private func checkWellFormed(
        _ deliveries: [WebhookReceiver.Delivery], file: StaticString = #filePath, line: UInt = #line
    )
        throws
    {
        let secrets = [secret, FakeOAuthProvider.clientSecret] + (try provider.issuedTokens())
        for delivery in deliveries {
            let text = String(decoding: delivery.body, as: UTF8.self)
            XCTAssertEqual(
                delivery.verified, true, "signature refused by the receiver: \(delivery.headers)", file: file,
                line: line)
            let timestamp = delivery.headers["x-baton-timestamp"] ?? ""
            XCTAssertEqual(
                delivery.headers["x-baton-signature"],
                "sha256="
                    + Digest.hmacSHA256Hex(
                        key: Array(secret.utf8), message: Array((timestamp + ".").utf8) + delivery.body),
                file: file, line: line)
            let seconds = Double(timestamp) ?? 0
            XCTAssertLessThan(
                abs(seconds - Date().timeIntervalSince1970), 300, "stale timestamp \(timestamp)", file: file, line: line
            )
            XCTAssertEqual(delivery.headers["content-type"], "application/json", file: file, line: line)
            let json = delivery.json
            XCTAssertEqual(json["service"] as? String, "crm", text, file: file, line: line)
            XCTAssertEqual(delivery.headers["x-baton-event"], json["event"] as? String, file: file, line: line)
            XCTAssertEqual(delivery.headers["x-baton-delivery"], json["id"] as? String, file: file, line: line)
            XCTAssertTrue(
                ["replica-1", "replica-2", "replica-3"].contains(json["replica"] as? String ?? ""), text, file: file,
                line: line)
            XCTAssertNotNil(json["version"] as? Int, text, file: file, line: line)
            let at = Double(json["at"] as? Int ?? 0) / 1000
            XCTAssertTrue(
                at >= started.timeIntervalSince1970 - 5 && at <= Date().timeIntervalSince1970 + 5, text, file: file,
                line: line)
            for secret in secrets where !secret.isEmpty {
                XCTAssertFalse(text.contains(secret), "a secret in a webhook body: \(text)", file: file, line: line)
                XCTAssertFalse(
                    delivery.headers.values.contains { $0.contains(secret) }, "a secret in a webhook header",
                    file: file, line: line)
            }
        }
        for log in logs() {
            XCTAssertFalse(log.contains(secret), "the webhook key in a replica's log", file: file, line: line)
        }
    }

    func testOneFailureEpisodeAndItsRecoveryAreDeliveredOnceEachAcrossThreeReplicas() async throws {
        try await start()
        try await okVersion(above: 0, "the replicas refresh crm")
        try provider.setMode("server_error")
        // Each replica fails three times in a row: each would raise refresh_failing on its own.
        try await eventually(
            "every replica has failed three times in a row", timeout: .seconds(90), diagnostics: diagnostics
        ) {
            self.logs().allSatisfy { $0.contains(#""event":"refresh_failed""#) && $0.contains(#""attempt":3"#) }
        }
        try await eventually("refresh_failing is delivered", timeout: .seconds(60), diagnostics: diagnostics) {
            try self.events(self.receiver.accepted()).contains("refresh_failing")
        }
        try provider.setMode("normal")
        let recovered = try await okVersion(above: 0, "crm refreshes again")
        try await eventually("recovered is delivered", timeout: .seconds(60), diagnostics: diagnostics) {
            try self.events(self.receiver.accepted()).contains("recovered")
        }
        // A late duplicate would come from a replica that saw the episode later: wait until every
        // replica has come past the recovery (two more refreshes) and Redis has nothing undelivered.
        let next = try await okVersion(above: recovered, "crm refreshes after the recovery")
        try await okVersion(above: next, "crm refreshes twice after the recovery")
        try await eventually("every event is marked delivered", diagnostics: diagnostics) {
            let seq = try await self.alertField("seq")
            let delivered = try await self.alertField("delivered")
            return seq == "2" && delivered == "2"
        }

        let received = try receiver.received()
        XCTAssertEqual(events(received), ["refresh_failing", "recovered"], diagnostics())
        XCTAssertEqual(received.map(\.status), [204, 204])
        try checkWellFormed(received)
        let failing = received[0].json
        let recovery = received[1].json
        XCTAssertEqual(failing["status"] as? String, "refreshing_failed")
        XCTAssertEqual(failing["previous"] as? String, "ok")
        XCTAssertFalse((failing["detail"] as? String ?? "").isEmpty, "refresh_failing names the provider's error")
        XCTAssertEqual(recovery["status"] as? String, "ok")
        XCTAssertEqual(recovery["previous"] as? String, "refresh_failing")
        XCTAssertNotEqual(failing["id"] as? String, recovery["id"] as? String)
        XCTAssertEqual(
            logs().joined().components(separatedBy: #""event":"alert_delivered""#).count - 1, 2, diagnostics())
    }

    func testNeedsReauthIsDeliveredOnceAfterTheReceiverFailedTwice() async throws {
        try await start()
        try await okVersion(above: 0, "the replicas refresh crm")
        try receiver.failNext(2)
        try provider.setMode("invalid_grant")
        try await eventually("needs_reauth is delivered", timeout: .seconds(60), diagnostics: diagnostics) {
            try self.events(self.receiver.accepted()).contains("needs_reauth")
        }
        try await eventually("the event is marked delivered and its claim released", diagnostics: diagnostics) {
            let claim = try await self.client.send("EXISTS", "oauth:{crm}:alert-claim").integer
            return try await self.alertField("delivered") == "1" && claim == 0
        }
        // Every replica has seen the credential blocked (the record says so) before counting.
        try await eventually("the record is needs_reauth", diagnostics: diagnostics) {
            try await self.store.record("crm")?.status == .needsReauth
        }

        let received = try receiver.received()
        XCTAssertEqual(received.map(\.status), [500, 500, 204], diagnostics())
        XCTAssertEqual(Set(events(received)), ["needs_reauth"])
        XCTAssertEqual(Set(received.map(\.body)).count, 1, "every attempt sends the same body")
        XCTAssertEqual(Set(received.compactMap { $0.headers["x-baton-delivery"] }).count, 1, "one id across attempts")
        try checkWellFormed(received)
        let body = received[2].json
        XCTAssertEqual(body["status"] as? String, "needs_reauth")
        XCTAssertTrue((body["detail"] as? String ?? "").contains("invalid_grant"), "\(body)")
        let seq = try await alertField("seq")
        XCTAssertEqual(seq, "1", "one event recorded across three replicas")
        XCTAssertEqual(
            logs().joined().components(separatedBy: #""event":"alert_delivery_failed""#).count - 1, 2, diagnostics())
    }

    /// The replica delivering an event stops (SIGTERM) while the receiver fails: it hands the claim
    /// back, another replica's sweep adopts the event and delivers it once the receiver recovers. (A
    /// replica killed outright leaves its claim to expire after the lease, then the same happens.)
    func testAnotherReplicaTakesOverTheDeliveryOfAStoppedOne() async throws {
        try await start()
        try await okVersion(above: 0, "the replicas refresh crm")
        try receiver.failNext(1_000_000)
        try provider.setMode("invalid_grant")
        try await eventually("the receiver refused two attempts", timeout: .seconds(60), diagnostics: diagnostics) {
            try self.receiver.received().count >= 2
        }
        let claimer = try await eventually("a replica holds the claim", diagnostics: diagnostics) {
            () async throws -> String? in
            try await self.client.send("GET", "oauth:{crm}:alert-claim").string
        }
        let index = try XCTUnwrap(Int(claimer.dropFirst("replica-".count))) - 1
        replicas[index].0.terminate(grace: 30)
        XCTAssertEqual(replicas[index].0.terminationStatus, 0, diagnostics())
        try receiver.failNext(0)
        try await eventually(
            "needs_reauth is delivered by another replica", timeout: .seconds(60), diagnostics: diagnostics
        ) {
            try self.events(self.receiver.accepted()) == ["needs_reauth"]
        }
        try await eventually("the event is marked delivered", diagnostics: diagnostics) {
            try await self.alertField("delivered") == "1"
        }
        let logs = logs()
        XCTAssertFalse(logs[index].contains(#""event":"alert_delivered""#), diagnostics())
        let adopters = logs.indices.filter { logs[$0].contains(#""event":"alert_adopted""#) }
        XCTAssertEqual(adopters.count, 1, diagnostics())
        XCTAssertNotEqual(adopters.first, index)
        XCTAssertTrue(adopters.allSatisfy { logs[$0].contains(#""event":"alert_delivered""#) }, diagnostics())
        XCTAssertEqual(try receiver.accepted().count, 1)
        try checkWellFormed(try receiver.received())
    }
}
