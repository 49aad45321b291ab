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
            ("redis://host?tls_ca_file=/ca.pem", "write rediss://"),
            ("rediss://db.example.com?tls_insecure=true", "only for loopback"),
            ("rediss://host?tls_cert_file=/c.pem", "both tls_cert_file and tls_key_file"),
            ("rediss://host?tls_insecure=yes", "true or false"),
            ("redis://a:1,b:2", "one server"),
            ("redis://host#main", "only meaningful in a redis-sentinel"),
            ("redis-sentinel://s1:26379,s2", "#master-name"),
            ("redis-sentinel://s1#", "master name"),
            ("redis-cluster://n1:7000/3", "only database 0"),
            ("redis-cluster://n1:7000,:7001", "host is missing"),
            ("redis://host:0", "port"),
            ("redis://host:99999", "port"),
            ("redis://host:abc", "port"),
            ("redis://host/x", "database number"),
            ("redis://", "host is missing"),
            ("unix://relative.sock", "absolute socket path"),
            ("unix:///tmp/r.sock?db=-1", "db must be"),
            ("unix:///tmp/r.sock?color=red", "unknown query parameter"),
            ("redis://u:topsecret@host:nope", "port"),
            // A password with an unencoded '/' or '?' ends the authority early: the parser then
            // sees part of it as the port or the path, and must not quote that part.
            ("redis://u:top/secret@host", "port"),
            ("redis://:topsecret?x@host", "port"),
            ("unix:///tmp/r.sock?password=%zztopsecret", "not name=value"),
            ("unix:///tmp/r.sock?topsecret", "not name=value"),
            ("unix:///tmp/r.sock?password=topsecret&db=topsecret", "db must be"),
            ("redis://[::1]:x?password=topsecret", "port"),
        ]
        for (url, expected) in cases {
            XCTAssertThrowsError(try RedisEndpoint(url: url), url) { error in
                let message = String(describing: error)
                XCTAssertTrue(message.contains(expected), "\(url): \(message)")
                XCTAssertFalse(message.contains("topsecret"), "password leaked: \(message)")
                XCTAssertFalse(message.contains("top/"), "password leaked: \(message)")
            }
        }
    }

    func testQueryPasswordsAreParsedAndNeverPrinted() throws {
        let endpoint = try RedisEndpoint(url: "unix:///run/redis.sock?password=q%26secret&db=4")
        XCTAssertEqual(endpoint.password, "q&secret")
        XCTAssertEqual(endpoint.database, 4)
        XCTAssertFalse(endpoint.description.contains("secret"), endpoint.description)
        XCTAssertEqual(endpoint.description, "unix://:***@/run/redis.sock?db=4")
    }

    func testRedactionHidesEverythingThatCouldBeASecret() {
        let cases: [(String, String)] = [
            ("redis://user:hunter2@host:6379/0", "redis://***@host:6379/0"),
            ("redis://hunter2@host", "redis://***@host"),
            ("redis://u:hunter2@x@host", "redis://***@host"),
            ("unix:///s.sock?password=hunter2", "unix:///s.sock?password=***"),
            ("unix:///s.sock?db=2&password=hunter2", "unix:///s.sock?db=2&password=***"),
            (
                "unix:///s.sock?pass=hunter2&pwd=hunter2&secret=hunter2&token=hunter2&key=hunter2&auth=hunter2&x=hunter2",
                "unix:///s.sock?pass=***&pwd=***&secret=***&token=***&key=***&auth=***&x=***"
            ),
            ("unix:///s.sock?PASSWORD=hunter2&pass%77ord=hunter2", "unix:///s.sock?PASSWORD=***&pass%77ord=***"),
            ("unix:///s.sock?db=hunter2", "unix:///s.sock?db=***"),
            ("unix:///s.sock?hunter2", "unix:///s.sock?***"),
            ("unix://u:hunter2@/s.sock?password=hunter2", "unix://***@/s.sock?password=***"),
            ("redis://host?password=a@hunter2", "redis://***"),
            ("redis://host#hunter2", "redis://host#***"),
            ("redis://host:6379/0", "redis://host:6379/0"),
            ("unix:///s.sock?db=3", "unix:///s.sock?db=3"),
            ("hunter2", "***"),
            ("", ""),
        ]
        for (url, expected) in cases {
            let redacted = RedisEndpoint.redacted(url)
            XCTAssertEqual(redacted, expected, url)
            XCTAssertFalse(redacted.contains("hunter2"), "\(url) -> \(redacted)")
            XCTAssertEqual(RedisEndpoint.redacted(redacted), redacted, "idempotent: \(url)")
            XCTAssertEqual(RedisEndpoint.containsCredentials(url), url.contains("://") && redacted != url, url)
        }
        XCTAssertFalse(RedisEndpoint.containsCredentials("redis://127.0.0.1:6379/0"))
        XCTAssertFalse(RedisEndpoint.containsCredentials("localhost:6379"), "not a URL: parsing reports that")
        XCTAssertTrue(RedisEndpoint.containsCredentials("redis://name@host"), "read as a password")
    }

    func testTLSParameters() throws {
        let endpoint = try RedisEndpoint(
            url: "rediss://baton:pw@cache.example.com:6380/2?tls_ca_file=/etc/ca%20dir/ca.pem&tls_cert_file=/c.pem"
                + "&tls_key_file=/k.pem&tls_server_name=redis.internal")
        XCTAssertEqual(endpoint.transport, .tcp(host: "cache.example.com", port: 6380))
        XCTAssertEqual(endpoint.database, 2)
        XCTAssertEqual(
            endpoint.tls,
            RedisTLSOptions(
                caFile: "/etc/ca dir/ca.pem", certificateFile: "/c.pem", keyFile: "/k.pem", serverName: "redis.internal"
            ))
        XCTAssertEqual(endpoint.description, "rediss://baton:***@cache.example.com:6380/2")
        XCTAssertEqual(try RedisEndpoint(url: "rediss://h").tls, RedisTLSOptions(), "the system store, full checks")
        XCTAssertNil(try RedisEndpoint(url: "redis://h").tls)
        XCTAssertEqual(try RedisEndpoint(url: "rediss://127.0.0.1:1?tls_insecure=true").tls?.insecure, true)
        XCTAssertEqual(try RedisEndpoint(url: "rediss://[::1]:1?tls_insecure=true").tls?.insecure, true)
    }

    func testSentinelURLs() throws {
        let endpoint = try RedisEndpoint(url: "redis-sentinel://:pw@s1,s2:26380,[::1]/1#my%20master")
        XCTAssertEqual(
            endpoint.topology,
            .sentinel(
                sentinels: [
                    .tcp(host: "s1", port: 26379), .tcp(host: "s2", port: 26380), .tcp(host: "::1", port: 26379),
                ],
                masterName: "my master"))
        XCTAssertNil(endpoint.transport)
        XCTAssertEqual(endpoint.password, "pw")
        XCTAssertEqual(endpoint.database, 1)
        XCTAssertNil(endpoint.tls)
        XCTAssertEqual(endpoint.description, "redis-sentinel://:***@s1:26379,s2:26380,[::1]:26379/1#my master")
        XCTAssertTrue(endpoint.address.contains("master 'my master'"), endpoint.address)
        XCTAssertNotNil(try RedisEndpoint(url: "rediss-sentinel://s1#m").tls)
        XCTAssertEqual(try RedisEndpoint(url: "redis-sentinel://s1?tls_ca_file=/ca.pem#m").tls?.caFile, "/ca.pem")
        XCTAssertEqual(
            RedisEndpoint.redacted("redis-sentinel://u:hunter2@s1,s2?tls_ca_file=/ca.pem#mymaster"),
            "redis-sentinel://***@s1,s2?tls_ca_file=/ca.pem#mymaster")
    }

    func testClusterURLs() throws {
        let endpoint = try RedisEndpoint(url: "redis-cluster://u:pw@n1:7000,n2,10.0.0.3:7002")
        XCTAssertEqual(
            endpoint.topology,
            .cluster(seeds: [
                .tcp(host: "n1", port: 7000), .tcp(host: "n2", port: 6379), .tcp(host: "10.0.0.3", port: 7002),
            ]))
        XCTAssertEqual(endpoint.username, "u")
        XCTAssertEqual(endpoint.description, "redis-cluster://u:***@n1:7000,n2:6379,10.0.0.3:7002")
        XCTAssertNotNil(try RedisEndpoint(url: "rediss-cluster://n1:7000").tls)
        let node = endpoint.server(at: .tcp(host: "n2", port: 7001))
        XCTAssertEqual(node.transport, .tcp(host: "n2", port: 7001))
        XCTAssertEqual(node.password, "pw")
    }

    func testErrorsBuiltByHandRedactTheURLToo() {
        let message = String(describing: RedisError.invalidURL("unix:///s.sock?password=hand-built", reason: "test"))
        XCTAssertFalse(message.contains("hand-built"), message)
        XCTAssertTrue(message.contains("unix:///s.sock?password=***"), message)
    }
}
