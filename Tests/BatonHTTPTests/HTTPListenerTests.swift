import BatonHTTP
import BatonTestSupport
import XCTest

/// Routing and request/answer shapes, through a real listener on an ephemeral loopback port.
final class HTTPListenerTests: XCTestCase {
    private func startListener(limits: HTTPListener.Limits = .init()) throws -> HTTPListener {
        let router = HTTPRouter()
        router.add(.get, "/livez") { _ in .text(200, "ok") }
        router.add([.post], prefix: "/v1/tokens/") { request in
            .json(
                200,
                [
                    "path": request.path, "body": String(decoding: request.body, as: UTF8.self),
                    "type": request.header("CONTENT-TYPE") ?? "", "x": request.query("x") ?? "-",
                ])
        }
        router.add([.post], prefix: "/v1/tokens/special/") { _ in .text(200, "longer prefix") }
        return try HTTPListener(address: "127.0.0.1", port: 0, limits: limits, handler: router.handle)
    }

    func testGetRoutedAndHeadHasHeadersWithoutBody() async throws {
        let listener = try startListener()
        defer { listener.stop() }
        XCTAssertGreaterThan(listener.boundPort, 0)

        let answer = try await get(port: listener.boundPort, "/livez")
        XCTAssertEqual(answer.status, 200, "\(answer)")
        XCTAssertEqual(answer.body, "ok\n")
        XCTAssertEqual(answer.headers["content-type"], "text/plain; charset=utf-8")

        let head = try await get(port: listener.boundPort, "/livez", method: "HEAD")
        XCTAssertEqual(head.status, 200, "\(head)")
        XCTAssertEqual(head.body, "", "HEAD must carry no body: \(head)")
        XCTAssertEqual(head.headers["content-length"], "3", "\(head)")
    }

    func testUnknownPathIs404AndWrongMethodIs405WithAllow() async throws {
        let listener = try startListener()
        defer { listener.stop() }

        let missing = try await get(port: listener.boundPort, "/nope")
        XCTAssertEqual(missing.status, 404, "\(missing)")

        let post = try await exchange(
            port: listener.boundPort,
            "POST /livez HTTP/1.1\r\nHost: t\r\nConnection: close\r\nContent-Length: 0\r\n\r\n")
        XCTAssertEqual(post.status, 405, "\(post)")
        XCTAssertEqual(post.headers["allow"], "GET, HEAD", "\(post)")

        let delete = try await get(port: listener.boundPort, "/v1/tokens/a/refresh", method: "DELETE")
        XCTAssertEqual(delete.status, 405, "\(delete)")
        XCTAssertEqual(delete.headers["allow"], "POST", "\(delete)")
    }

    func testPostBodyQueryAndHeadersReachThePrefixRoute() async throws {
        let listener = try startListener()
        defer { listener.stop() }
        let body = #"{"version":3}"#
        let answer = try await exchange(
            port: listener.boundPort,
            "POST /v1/tokens/my%20api/refresh?x=1&y HTTP/1.1\r\nHost: t\r\nConnection: close\r\n"
                + "content-type: application/json\r\nContent-Length: \(body.utf8.count)\r\n\r\n\(body)")
        XCTAssertEqual(answer.status, 200, "\(answer)")
        let fields = try JSONDecoder().decode([String: String].self, from: Data(answer.body.utf8))
        XCTAssertEqual(
            fields, ["path": "/v1/tokens/my api/refresh", "body": body, "type": "application/json", "x": "1"])

        let longer = try await exchange(
            port: listener.boundPort,
            "POST /v1/tokens/special/x HTTP/1.1\r\nHost: t\r\nConnection: close\r\nContent-Length: 0\r\n\r\n")
        XCTAssertEqual(longer.body, "longer prefix\n", "the longest prefix wins: \(longer)")
    }

    func testDeclaredBodyAboveTheLimitIs413WithoutReadingIt() async throws {
        let listener = try startListener(limits: .init(maxBodyBytes: 1024))
        defer { listener.stop() }
        // Declares 10 MB and sends only the head: the answer must come without the body.
        let answer = try await exchange(
            port: listener.boundPort,
            "POST /v1/tokens/a/refresh HTTP/1.1\r\nHost: t\r\nConnection: close\r\nContent-Length: 10000000\r\n\r\n")
        XCTAssertEqual(answer.status, 413, "\(answer)")

        let small = try await exchange(
            port: listener.boundPort,
            "POST /v1/tokens/a/refresh HTTP/1.1\r\nHost: t\r\nConnection: close\r\nContent-Length: 1024\r\n\r\n"
                + String(repeating: "a", count: 1024))
        XCTAssertEqual(small.status, 200, "a body at the limit is fine: \(small)")
    }

    func testChunkedBodyAboveTheLimitClosesTheConnection() async throws {
        let listener = try startListener(limits: .init(maxBodyBytes: 1024))
        defer { listener.stop() }
        let chunk = String(repeating: "b", count: 800)
        let request =
            "POST /v1/tokens/a/refresh HTTP/1.1\r\nHost: t\r\nConnection: close\r\nTransfer-Encoding: chunked\r\n\r\n"
            + "320\r\n\(chunk)\r\n320\r\n\(chunk)\r\n0\r\n\r\n"
        let answer = try await exchange(port: listener.boundPort, request)
        XCTAssertNotEqual(answer.status, 200, "a chunked body past the limit must not reach the handler: \(answer)")
        let next = try await get(port: listener.boundPort, "/livez")
        XCTAssertEqual(next.status, 200, "\(next)")
    }

    func testAddressInUseIsATypedErrorNamingTheAddress() throws {
        let first = try startListener()
        defer { first.stop() }
        XCTAssertThrowsError(
            try HTTPListener(address: "127.0.0.1", port: first.boundPort) { _ in .text(200, "x") }
        ) { error in
            guard let error = error as? HTTPListenerError else { return XCTFail("untyped: \(error)") }
            XCTAssertEqual(error.reason, .addressInUse, "\(error)")
            XCTAssertTrue(
                String(describing: error).contains("127.0.0.1:\(first.boundPort)")
                    && String(describing: error).contains("http.listen"), "\(error)")
        }
        XCTAssertThrowsError(try HTTPListener(address: "localhost", port: 1) { _ in .text(200, "x") }) { error in
            XCTAssertEqual((error as? HTTPListenerError)?.reason, .invalidAddress, "\(error)")
        }
    }
}
