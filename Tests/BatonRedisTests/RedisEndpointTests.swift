import BatonRedis
import XCTest

/// URL parsing: no server needed.
final class RedisEndpointTests: XCTestCase {
    func testFullTCPURL() throws {
        let endpoint = try RedisEndpoint(url: "redis://baton:s%40cret@redis.internal:6380/3")
        XCTAssertEqual(endpoint.transport, .tcp(host: "redis.internal", port: 6380))
        XCTAssertEqual(endpoint.username, "baton")
        XCTAssertEqual(endpoint.password, "s@cret")
        XCTAssertEqual(endpoint.database, 3)
        XCTAssertEqual(endpoint.description, "redis://baton:***@redis.internal:6380/3")
        XCTAssertFalse(endpoint.description.contains("s@cret"))
    }

    func testDefaults() throws {
        let endpoint = try RedisEndpoint(url: "redis://localhost")
        XCTAssertEqual(endpoint.transport, .tcp(host: "localhost", port: 6379))
        XCTAssertNil(endpoint.username)
        XCTAssertNil(endpoint.password)
        XCTAssertEqual(endpoint.database, 0)
    }

    func testPasswordOnlyForms() throws {
        XCTAssertEqual(try RedisEndpoint(url: "redis://:pw@h:1/0").password, "pw")
        XCTAssertNil(try RedisEndpoint(url: "redis://:pw@h:1/0").username)
        XCTAssertEqual(try RedisEndpoint(url: "redis://pw@h").password, "pw")
    }

    func testIPv6() throws {
        let endpoint = try RedisEndpoint(url: "redis://[::1]:7000/1")
        XCTAssertEqual(endpoint.transport, .tcp(host: "::1", port: 7000))
        XCTAssertEqual(endpoint.address, "[::1]:7000")
    }

    func testUnixSocket() throws {
        let endpoint = try RedisEndpoint(url: "unix:///run/redis/redis.sock?db=2")
        XCTAssertEqual(endpoint.transport, .unix(path: "/run/redis/redis.sock"))
        XCTAssertEqual(endpoint.database, 2)
        let withCredentials = try RedisEndpoint(url: "unix://user:pw@/tmp/r.sock")
        XCTAssertEqual(withCredentials.username, "user")
        XCTAssertEqual(withCredentials.password, "pw")
        XCTAssertEqual(withCredentials.transport, .unix(path: "/tmp/r.sock"))
    }

    func testBadURLsNameTheProblemAndHideThePassword() {
        let cases: [(String, String)] = [
            ("http://host", "scheme"),
            ("rediss://host", "TLS"),
            ("redis://host:0", "port"),
            ("redis://host:99999", "port"),
            ("redis://host:abc", "port"),
            ("redis://host/x", "database number"),
            ("redis://", "host is missing"),
            ("unix://relative.sock", "absolute socket path"),
            ("unix:///tmp/r.sock?db=-1", "db must be"),
            ("unix:///tmp/r.sock?color=red", "unknown query parameter"),
            ("redis://u:topsecret@host:nope", "port"),
        ]
        for (url, expected) in cases {
            XCTAssertThrowsError(try RedisEndpoint(url: url), url) { error in
                let message = String(describing: error)
                XCTAssertTrue(message.contains(expected), "\(url): \(message)")
                XCTAssertFalse(message.contains("topsecret"), "password leaked: \(message)")
            }
        }
    }
}
