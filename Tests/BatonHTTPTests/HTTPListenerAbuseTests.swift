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
        let listener = try startListener(limits: .init(connectionTimeout: .seconds(5)))
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
        XCTAssertLessThan(
            ContinuousClock.now - started, .seconds(4), "a normal request waited for the slow ones' 5 s idle timeout")

        try await eventually("every slow connection is closed by the idle timeout", timeout: .seconds(30)) {
            stuck.allSatisfy { $0.isClosedByPeer() }
        }
        // The per-address slots are free again: 127.0.0.1 itself is served.
        let after = try await get(port: port, "/livez")
        XCTAssertEqual(after.status, 200, "\(after)")
    }

    func testAHandlerThatWaitsHoldsNoThread() async throws {
        // The handler of /held waits (up to 30 s) until the test opens the gate: deterministic,
        // unlike a sleep, and a stronger claim than "a 2 s sleep does not delay others".
        let gate = Mailbox<Void>()
        let entered = LockedBox(false)
        let router = HTTPRouter()
        router.add(.get, "/livez") { _ in .text(200, "ok") }
        router.add(.get, "/held") { _ in
            entered.withLockedValue { $0 = true }
            await gate.wait(upTo: .seconds(30))
            return .text(200, "released")
        }
        let listener = try HTTPListener(address: "127.0.0.1", port: 0, handler: router.handle)
        defer { listener.stop() }
        let port = listener.boundPort
        let held = Task { try await get(port: port, "/held", source: "127.0.0.3") }
        try await eventually("the held request reached its handler", timeout: .seconds(15)) {
            entered.withLockedValue { $0 }
        }

        let started = ContinuousClock.now
        let statuses = try await withThrowingTaskGroup(of: Int?.self) { group in
            for index in 0..<20 {
                // Two client addresses: 20 at once from one would pass its limit of 16.
                group.addTask { try await get(port: port, "/livez", source: "127.0.2.\(index % 2 + 1)").status }
            }
            var statuses: [Int?] = []
            for try await status in group { statuses.append(status) }
            return statuses
        }
        let took = ContinuousClock.now - started
        XCTAssertEqual(statuses, Array(repeating: 200, count: 20))
        XCTAssertLessThan(took, .seconds(10), "20 quick requests took \(took) while one handler waited")

        gate.signal()
        let heldAnswer = try await held.value
        XCTAssertEqual(heldAnswer.status, 200, "\(heldAnswer)")
        XCTAssertEqual(
            heldAnswer.body, "released\n", "the held request was answered before the gate opened: \(heldAnswer)")
    }

    func testASlowHandlerSleepingTwoSecondsDelaysNoOtherRequest() async throws {
        let listener = try startListener(slow: .seconds(2))
        defer { listener.stop() }
        let port = listener.boundPort
        let slow = Task { try await get(port: port, "/slow", source: "127.0.0.3") }
        let started = ContinuousClock.now
        for index in 0..<20 {
            let answer = try await get(port: port, "/livez", source: "127.0.2.\(index % 2 + 1)")
            XCTAssertEqual(answer.status, 200, "\(answer)")
        }
        let took = ContinuousClock.now - started
        let slowAnswer = try await slow.value
        XCTAssertEqual(slowAnswer.body, "slept\n", "\(slowAnswer)")
        // Serialised behind the sleeping handler, 20 requests would take 40 s.
        XCTAssertLessThan(took, .seconds(10), "20 requests one after another took \(took) beside a 2 s handler")
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
        let entered = LockedBox(false)
        let router = HTTPRouter()
        router.add(.get, "/held") { _ in
            entered.withLockedValue { $0 = true }
            try? await Task.sleep(for: .seconds(30))
            return .text(200, "too late")
        }
        let listener = try HTTPListener(address: "127.0.0.1", port: 0, handler: router.handle)
        let port = listener.boundPort
        let pending = Task { try await get(port: port, "/held") }
        try await eventually("the request reached its handler", timeout: .seconds(15)) {
            entered.withLockedValue { $0 }
        }
        let started = ContinuousClock.now
        listener.stop()
        let answer = try await pending.value
        XCTAssertLessThan(ContinuousClock.now - started, .seconds(10), "stop must not wait for the handler")
        XCTAssertEqual(answer.status, 503, "\(answer)")
        XCTAssertThrowsError(try RawHTTPConnection(port: port), "the port must be closed after stop")
    }
}
