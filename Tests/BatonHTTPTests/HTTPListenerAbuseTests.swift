import BatonHTTP
import BatonSupport
import BatonTestSupport
import XCTest

/// Bad and heavy clients get bounded answers, and never stall the listener.
final class HTTPListenerAbuseTests: XCTestCase {
    private func startListener(
        limits: HTTPListener.Limits = .init(), slow: Duration = .seconds(2)
    ) throws -> HTTPListener {
        let router = HTTPRouter()
        router.add(.get, "/livez") { _ in .text(200, "ok") }
        router.add(.get, "/slow") { _ in
            try? await Task.sleep(for: slow)
            return .text(200, "slept")
        }
        return try HTTPListener(address: "127.0.0.1", port: 0, limits: limits, handler: router.handle)
    }

    func testHeaderFloodGetsABoundedAnswerAndTheNextRequestIsServed() async throws {
        let listener = try startListener()
        defer { listener.stop() }
        var request = "GET /livez HTTP/1.1\r\nHost: t\r\n"
        for index in 0..<1000 { request += "X-Flood-\(index): \(String(repeating: "f", count: 90))\r\n" }
        request += "Connection: close\r\n\r\n"
        XCTAssertGreaterThan(request.utf8.count, 100_000)

        let started = ContinuousClock.now
        let answer = try await exchange(port: listener.boundPort, request)
        XCTAssertTrue(
            answer.status == nil || answer.status == 431 || answer.status == 413,
            "100 KB of headers must be refused (431, or the connection closed), not served: \(answer)")
        XCTAssertLessThan(ContinuousClock.now - started, .seconds(10), "the refusal must not wait for a timeout")

        let next = try await get(port: listener.boundPort, "/livez")
        XCTAssertEqual(next.status, 200, "\(next)")
    }

    func testSlowlorisConnectionsNeitherStallTheListenerNorStayOpen() async throws {
        let listener = try startListener(limits: .init(connectionTimeout: .seconds(2)))
        defer { listener.stop() }
        let port = listener.boundPort
        // 70 connections from 127.0.0.1, each sending half a request head, then a little more.
        let stuck = try await runOnDedicatedThread(named: "slowloris") { () throws -> [RawHTTPConnection] in
            try (0..<70).map { _ in
                let connection = try RawHTTPConnection(port: port)
                connection.send("GET /livez HTTP/1.1\r\nHost: t\r\n")
                return connection
            }
        }
        for connection in stuck { connection.send("X-Slow: 1\r\n") }

        // Another client (another loopback address: the per-address limit holds the 70 to 16) is
        // answered at once.
        let started = ContinuousClock.now
        let answer = try await get(port: port, "/livez", source: "127.0.0.2")
        XCTAssertEqual(answer.status, 200, "\(answer)")
        XCTAssertLessThan(ContinuousClock.now - started, .seconds(3), "a normal request waited behind slow ones")

        try await eventually("every slow connection is closed by the idle timeout", timeout: .seconds(30)) {
            stuck.allSatisfy { $0.isClosedByPeer() }
        }
        // The per-address slots are free again: 127.0.0.1 itself is served.
        let after = try await get(port: port, "/livez")
        XCTAssertEqual(after.status, 200, "\(after)")
    }

    func testASlowHandlerHoldsNoThread() async throws {
        let listener = try startListener(slow: .seconds(2))
        defer { listener.stop() }
        let port = listener.boundPort
        let started = ContinuousClock.now
        async let slow = get(port: port, "/slow", source: "127.0.0.3")
        // Let the slow request reach its handler first.
        try await eventually("the slow request is running", timeout: .seconds(10)) {
            ContinuousClock.now - started > .milliseconds(200)
        }
        var fastest = Duration.zero
        try await withThrowingTaskGroup(of: (Int?, Duration).self) { group in
            for index in 0..<20 {
                group.addTask {
                    let begun = ContinuousClock.now
                    // Two client addresses: 20 at once from one would pass its limit of 16.
                    let answer = try await get(port: port, "/livez", source: "127.0.2.\(index % 2 + 1)")
                    return (answer.status, ContinuousClock.now - begun)
                }
            }
            for try await (status, took) in group {
                XCTAssertEqual(status, 200)
                fastest = max(fastest, took)
            }
        }
        XCTAssertLessThan(
            ContinuousClock.now - started, .milliseconds(1900),
            "20 quick requests must all be answered while one handler sleeps 2 s (slowest took \(fastest))")
        let slowAnswer = try await slow
        XCTAssertEqual(slowAnswer.body, "slept\n", "\(slowAnswer)")
        XCTAssertGreaterThanOrEqual(ContinuousClock.now - started, .seconds(2))
    }

    func testConcurrentLoadIsAnsweredCompletely() async throws {
        // Each client address may hold 16 connections: spread 200 requests over four addresses.
        let listener = try startListener()
        defer { listener.stop() }
        let port = listener.boundPort
        let statuses = try await withThrowingTaskGroup(of: Int?.self) { group in
            for index in 0..<200 {
                group.addTask {
                    if index >= 8 { try await Task.sleep(for: .milliseconds(index)) }
                    return try await get(port: port, "/livez", source: "127.0.1.\(index % 4 + 1)").status
                }
            }
            var statuses: [Int?] = []
            for try await status in group { statuses.append(status) }
            return statuses
        }
        XCTAssertEqual(statuses.count, 200)
        XCTAssertEqual(
            statuses.filter { $0 == 200 }.count, 200, "\(Dictionary(grouping: statuses) { $0 }.mapValues(\.count))")
    }

    func testStopAnswers503ToARequestWhoseHandlerStillRuns() async throws {
        let listener = try startListener(slow: .seconds(30))
        let port = listener.boundPort
        async let pending = get(port: port, "/slow")
        try await Task.sleep(for: .milliseconds(500))  // not a wait condition: gives the request time to be dispatched
        let started = ContinuousClock.now
        listener.stop()
        let answer = try await pending
        XCTAssertLessThan(ContinuousClock.now - started, .seconds(10), "stop must not wait for the handler")
        XCTAssertTrue(answer.status == 503 || answer.status == nil, "\(answer)")
    }
}
