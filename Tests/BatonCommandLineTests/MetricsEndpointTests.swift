import BatonCoordinator
import BatonMetrics
import BatonRedis
import BatonSupport
import BatonTestSupport
import BatonTokens
import Foundation
import XCTest

@testable import baton

/// The `/metrics` handler `baton serve` registers, against a real redis-server: what a scrape
/// shows, and that a scrape answers in time with `baton_redis_up 0` when Redis does not.
final class MetricsEndpointTests: RedisTestCase {
    func testAScrapeShowsEveryServiceFromRedisAndTheReplicasOwnMetrics() async throws {
        let redis = try startRedis()
        let metrics = ReplicaMetrics(version: BatonDefaults.version)
        let client = try makeClient(redis, options: .init(commandObserver: MetricsEndpoint.redisObserver(metrics)))
        let store = TokenStore(client: client, prefix: "oauth", encryption: TestKeyring.encryption)
        try await store.seed(service: "my-api", refreshToken: "rt-secret-value", replica: "ops")
        let coordinator = try Coordinator(
            client: client, options: .init(replica: "r1", encryption: TestKeyring.encryption), services: [],
            log: StructuredLog(replica: "r1", minimum: .error) { _ in }, metrics: metrics)

        let (contentType, body) = await MetricsEndpoint.handler(coordinator: coordinator)()
        let text = String(decoding: body, as: UTF8.self)
        XCTAssertEqual(contentType, "text/plain; version=0.0.4; charset=utf-8")
        XCTAssertTrue(text.contains("baton_redis_up 1\n"), text)
        XCTAssertTrue(text.contains("baton_service_status{service=\"my-api\",status=\"seeded\"} 1\n"), text)
        XCTAssertTrue(text.contains("baton_build_info{version=\"\(BatonDefaults.version)\"} 1\n"), text)
        XCTAssertTrue(text.contains("process_resident_memory_bytes "), text)
        XCTAssertFalse(text.contains("rt-secret-value"), "no secret in a scrape")
        // The observer timed the scrape's own pipelined reads.
        XCTAssertGreaterThan(metrics.redisCommandDuration.count(), 3)
    }

    func testAScrapeAnswersInTimeWithRedisDownWhenRedisDoesNotAnswer() async throws {
        let redis = try startRedis()
        let client = try makeClient(redis, options: .init(connection: .init(commandTimeout: .seconds(10))))
        let store = TokenStore(client: client, prefix: "oauth", encryption: TestKeyring.encryption)
        try await store.seed(service: "my-api", refreshToken: "rt-0", replica: "ops")
        let coordinator = try Coordinator(
            client: client, options: .init(replica: "r1", encryption: TestKeyring.encryption), services: [],
            log: StructuredLog(replica: "r1", minimum: .error) { _ in })
        // A stopped server accepts nothing it answers: every read waits for its 10 s timeout.
        redis.signal(SIGSTOP)
        defer { redis.signal(SIGCONT) }
        let started = ContinuousClock.now
        let (_, body) = await MetricsEndpoint.handler(coordinator: coordinator, redisTimeout: .milliseconds(500))()
        let took = ContinuousClock.now - started
        let text = String(decoding: body, as: UTF8.self)
        XCTAssertLessThan(took, .seconds(5), "the scrape waited for Redis instead of its 500 ms bound")
        XCTAssertTrue(text.contains("baton_redis_up 0\n"), text)
        XCTAssertFalse(text.contains("baton_service_status"), "no stale or partial Redis state: \(text)")
        XCTAssertTrue(
            text.contains("baton_refresh_total") || text.contains("baton_forced_refresh_requests_total"), text)
    }
}
