import BatonRedis
import BatonTestSupport
import BatonTokens
import Foundation
import XCTest

@testable import BatonCoordinator

/// The alert scripts' contracts against a real redis-server: a condition is recorded once however
/// many replicas report it, only while the token record agrees; the claim holder delivers in order
/// and releases the claim atomically with finding nothing left; a free claim is adopted.
final class AlertScriptsTests: RedisTestCase {
    private var client: RedisClient!
    private var keys: AlertKeys!

    override func setUp() async throws {
        client = try makeClient(try startRedis())
        keys = AlertKeys(try TokenKeys(prefix: "t\(testName.prefix(40))", service: "crm"))
    }

    private func event(_ condition: AlertCondition, detail: String? = nil) -> AlertEvent {
        AlertEvent(
            condition: condition, service: "crm", version: 7, at: 1_764_000_000_000, replica: "r1", detail: detail)
    }

    /// Runs the transition as `replica`; returns `[seq, claimed]`.
    private func transition(_ event: AlertEvent, as replica: String) async throws -> [Int64] {
        let reply = try await client.run(
            AlertScripts.transition, keys: [keys.alert, keys.claim, keys.token],
            arguments: [
                event.condition.rawValue, event.template, replica, 60_000,
                event.condition.requiredRecordStatus?.rawValue ?? "",
            ])
        return reply.array?.compactMap(\.integer) ?? []
    }

    private func setRecordStatus(_ status: String) async throws {
        try await client.send("SET", keys.token, #"{"service":"crm","status":"\#(status)","version":7}"#)
    }

    private func next(as replica: String) async throws -> RESPValue {
        try await client.run(AlertScripts.next, keys: [keys.alert, keys.claim], arguments: [replica, 60_000])
    }

    private func body(_ seq: Int64) async throws -> [String: Any] {
        let text = try await client.send("HGET", keys.alert, "body:\(seq)").bytes ?? []
        return try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(text)) as? [String: Any])
    }

    func testAConditionIsRecordedOnceAcrossReplicas() async throws {
        try await setRecordStatus("needs_reauth")
        let first = try await transition(event(.needsReauth, detail: "invalid_grant: revoked"), as: "r1")
        XCTAssertEqual(first, [1, 1])
        let second = try await transition(event(.needsReauth), as: "r2")
        let third = try await transition(event(.needsReauth), as: "r3")
        XCTAssertEqual(second, [0, 0])
        XCTAssertEqual(third, [0, 0])
        let claim = try await client.send("GET", keys.claim).string
        XCTAssertEqual(claim, "r1")
        let stored = try await body(1)
        XCTAssertEqual(stored["id"] as? String, "crm:1:1764000000000")
        XCTAssertEqual(stored["previous"] as? String, "ok")
        XCTAssertEqual(stored["event"] as? String, "needs_reauth")
        XCTAssertEqual(stored["detail"] as? String, "invalid_grant: revoked")
    }

    func testAStaleObservationIsDropped() async throws {
        // A failure reported after the record went back to ok, and a success reported while it fails.
        try await setRecordStatus("ok")
        let failing = try await transition(event(.refreshFailing), as: "r1")
        XCTAssertEqual(failing, [0, 0])
        try await setRecordStatus("refreshing_failed")
        let raised = try await transition(event(.refreshFailing), as: "r1")
        XCTAssertEqual(raised, [1, 1])
        let staleRecovery = try await transition(event(.ok), as: "r2")
        XCTAssertEqual(staleRecovery, [0, 0])
        try await client.send("DEL", keys.token)
        let noRecord = try await transition(event(.ok), as: "r2")
        XCTAssertEqual(noRecord, [0, 0], "recovered needs an ok record")
        try await setRecordStatus("ok")
        let recovered = try await transition(event(.ok), as: "r2")
        XCTAssertEqual(recovered, [2, 0], "r1 still holds the claim: it delivers this one too")
        let stored = try await body(2)
        XCTAssertEqual(stored["event"] as? String, "recovered")
        XCTAssertEqual(stored["previous"] as? String, "refresh_failing")
    }

    func testRecoveringFromNothingSendsNothing() async throws {
        try await setRecordStatus("ok")
        let reply = try await transition(event(.ok), as: "r1")
        XCTAssertEqual(reply, [0, 0])
        let exists = try await client.send("EXISTS", keys.alert).integer
        XCTAssertEqual(exists, 0)
    }

    func testTheClaimHolderDeliversInOrderThenReleases() async throws {
        _ = try await transition(event(.needsSeed), as: "r1")
        _ = try await transition(event(.configMismatch), as: "r2")
        let notOurs = try await next(as: "r2")
        XCTAssertEqual(notOurs.array?.first?.integer, -1)
        let first = try await next(as: "r1")
        XCTAssertEqual(first.array?.first?.integer, 1)
        XCTAssertTrue(String(decoding: first.array?[1].bytes ?? [], as: UTF8.self).contains(#""event":"needs_seed""#))
        let again = try await next(as: "r1")
        XCTAssertEqual(again.array?.first?.integer, 1, "undelivered until marked")
        try await client.run(AlertScripts.delivered, keys: [keys.alert], arguments: [1])
        let second = try await next(as: "r1")
        XCTAssertEqual(second.array?.first?.integer, 2)
        try await client.run(AlertScripts.delivered, keys: [keys.alert], arguments: [2])
        let done = try await next(as: "r1")
        XCTAssertEqual(done.array?.first?.integer, 0)
        let claim = try await client.send("EXISTS", keys.claim).integer
        XCTAssertEqual(claim, 0, "released with nothing left")
        let bodies = try await client.send("HKEYS", keys.alert).array?.compactMap(\.string) ?? []
        XCTAssertFalse(bodies.contains { $0.hasPrefix("body:") }, "\(bodies)")
        let nextTransition = try await transition(event(.unknownKey), as: "r3")
        XCTAssertEqual(nextTransition, [3, 1], "a free claim is taken by the next recorder")
    }

    func testAFreeClaimIsAdoptedAndOnlyItsHolderReleasesIt() async throws {
        _ = try await transition(event(.needsSeed), as: "r1")
        func adopt(_ replica: String) async throws -> Int64? {
            try await client.run(AlertScripts.adopt, keys: [keys.alert, keys.claim], arguments: [replica, 60_000])
                .integer
        }
        let held = try await adopt("r2")
        XCTAssertEqual(held, 0)
        let notReleased = try await client.run(RedisScript.compareAndDelete, keys: [keys.claim], arguments: ["r2"])
            .integer
        XCTAssertEqual(notReleased, 0)
        let released = try await client.run(RedisScript.compareAndDelete, keys: [keys.claim], arguments: ["r1"]).integer
        XCTAssertEqual(released, 1)
        let adopted = try await adopt("r2")
        XCTAssertEqual(adopted, 1)
        try await client.run(AlertScripts.delivered, keys: [keys.alert], arguments: [1])
        let nothingLeft = try await adopt("r3")
        XCTAssertEqual(nothingLeft, -1)
    }

    func testAPlaceholderInTheDetailCannotTakeTheEventNumber() async throws {
        try await setRecordStatus("refreshing_failed")
        _ = try await transition(event(.refreshFailing, detail: "boom @@SEQ@@ @@PREVIOUS@@ @@@@SEQ@@@@"), as: "r1")
        let stored = try await body(1)
        XCTAssertEqual(stored["id"] as? String, "crm:1:1764000000000")
        XCTAssertEqual(stored["previous"] as? String, "ok")
        XCTAssertFalse((stored["detail"] as? String ?? "").contains("@@"), "\(stored)")
    }
}
