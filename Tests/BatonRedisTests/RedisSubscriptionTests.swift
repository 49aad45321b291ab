import BatonRedis
import BatonTestSupport
import XCTest

final class RedisSubscriptionTests: RedisTestCase {
    func testDeliveryAndWaitDeadline() throws {
        let server = try startRedis()
        let subscription = try RedisSubscription(endpoint: RedisEndpoint(url: server.url))
        let publisher = try RedisConnection(url: server.url)
        let channel = key("events")
        try subscription.subscribe([channel])
        try subscription.psubscribe([key("p") + ":*"])

        // Nothing published: the wait ends at its deadline with nil.
        let started = ContinuousClock.now
        XCTAssertNil(try subscription.next(timeout: .milliseconds(300)))
        let waited = ContinuousClock.now - started
        XCTAssertGreaterThanOrEqual(waited, .milliseconds(290))
        XCTAssertLessThan(waited, .milliseconds(1000))

        let payload: [UInt8] = [0x00, 0x68, 0x69, 0xff]
        XCTAssertEqual(try publisher.send(RedisCommand("PUBLISH", channel, payload)), .integer(1))
        XCTAssertEqual(
            try subscription.next(timeout: .seconds(2)),
            .message(PubSubMessage(channel: channel, pattern: nil, payload: payload)))

        try publisher.send(RedisCommand("PUBLISH", key("p") + ":svc", "hello"))
        XCTAssertEqual(
            try subscription.next(timeout: .seconds(2)),
            .message(PubSubMessage(channel: key("p") + ":svc", pattern: key("p") + ":*", payload: Array("hello".utf8))))

        // A message published while nobody waits is delivered by the next wait, in order.
        for index in 0..<3 { try publisher.send(RedisCommand("PUBLISH", channel, "m\(index)")) }
        for index in 0..<3 {
            guard case .message(let message) = try subscription.next(timeout: .seconds(2)) else {
                return XCTFail("missing m\(index)")
            }
            XCTAssertEqual(message.text, "m\(index)")
        }

        try subscription.unsubscribe([channel])
        XCTAssertEqual(try publisher.send(RedisCommand("PUBLISH", channel, "gone")), .integer(0))
    }

    func testResubscribesAfterRestart() throws {
        let server = try startRedis()
        let subscription = try RedisSubscription(
            endpoint: RedisEndpoint(url: server.url),
            options: .init(reconnect: .init(giveUpAfter: .seconds(5)))
        )
        let channel = key()
        try subscription.subscribe([channel])
        try server.restart()
        XCTAssertEqual(try subscription.next(timeout: .seconds(5)), .resubscribed)
        let publisher = try RedisConnection(url: server.url)
        XCTAssertEqual(try publisher.send(RedisCommand("PUBLISH", channel, "after")), .integer(1))
        guard case .message(let message) = try subscription.next(timeout: .seconds(2)) else {
            return XCTFail("no message after restart")
        }
        XCTAssertEqual(message.text, "after")
    }
}
