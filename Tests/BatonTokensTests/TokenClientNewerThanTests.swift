import BatonRedis
import BatonTestSupport
import BatonTokens
import Foundation
import XCTest

/// `TokenClient.accessToken(for:newerThan:)` after a 401: a newer *failure* record still holds the
/// token that got the 401, so only a newer successful record answers (found by the token API's
/// helper: `baton get --newer-than` returned the refused token after a failed forced refresh).
final class TokenClientNewerThanTests: XCTestCase {
    func testANewerFailureRecordIsWaitedPast() async throws {
        let redis = try RedisServerProcess.start()
        addTeardownBlock { redis.stop() }
        let client = try RedisClient(url: redis.url)
        addTeardownBlock { client.shutDown() }
        let store = TokenStore(client: client, prefix: "oauth", encryption: TestKeyring.encryption)
        let tokens = TokenClient(client: client, prefix: "oauth")
        let now = try await store.now()
        func write(_ token: String, fence: Int64, status: TokenRecord.Status) async throws {
            let record = TokenRecord(
                service: "my-api", accessToken: token, tokenType: "Bearer", expiresAt: now + 600_000, scope: nil,
                version: fence, refreshedAt: now, refreshedBy: "test", status: status,
                lastError: status == .ok ? nil : .init(code: "server_error", description: "down", at: now))
            _ = try await store.persist(
                record, service: "my-api", secret: nil, fence: fence, usedSecret: nil,
                event: status == .ok ? .refreshed : .failed, replica: "test", owner: "nobody")
        }
        try await write("at-refused", fence: 5, status: .ok)
        // The forced refresh failed: a newer record, same token.
        try await write("at-refused", fence: 6, status: .refreshingFailed)
        let waiting = Task { try await tokens.accessToken(for: "my-api", newerThan: 5, wait: .seconds(20)) }
        try await eventually("the forced-refresh request is pushed") {
            try await client.send("LLEN", "oauth:refresh-requests").integer == 1
        }
        try await write("at-new", fence: 7, status: .ok)
        let record = try await waiting.value
        XCTAssertEqual(record.accessToken, "at-new", "the failure record at version 6 is not an answer")
        XCTAssertEqual(record.version, 7)
    }
}
