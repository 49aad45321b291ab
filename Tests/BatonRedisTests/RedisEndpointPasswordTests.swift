import BatonRedis
import BatonSupport
import XCTest

/// A password put into a URL by ``RedisURLCredentials/inserting(password:into:)`` (from
/// `BATON_REDIS_PASSWORD` or `redis_password_file`) is what the endpoint logs in with, and stays
/// hidden in every rendering of the URL.
final class RedisEndpointPasswordTests: XCTestCase {
    func testTheInsertedPasswordIsTheEndpointsAndStaysHidden() throws {
        let password = "s3cr:t@/?#%é pw"
        let cases: [(url: String, username: String?)] = [
            ("redis://127.0.0.1:6379/0", nil), ("redis://coordinator:@redis:6379/3", "coordinator"),
            ("rediss://coordinator:@redis:6379/0?tls_ca_file=/etc/baton/tls/ca.crt", "coordinator"),
            ("redis-sentinel://coordinator:@s1:26379,s2:26379/0#baton", "coordinator"),
            ("redis-cluster://n1:7000,n2:7001", nil), ("unix:///run/redis.sock?db=2", nil),
        ]
        for (url, username) in cases {
            let combined = try XCTUnwrap(RedisURLCredentials.inserting(password: password, into: url), url)
            let endpoint = try RedisEndpoint(url: combined)
            let plain = try RedisEndpoint(url: url)
            XCTAssertEqual(endpoint.password, password, url)
            XCTAssertEqual(endpoint.username, username, url)
            XCTAssertEqual(endpoint.topology, plain.topology, url)
            XCTAssertEqual(endpoint.database, plain.database, url)
            XCTAssertEqual(endpoint.tls, plain.tls, url)
            XCTAssertFalse(endpoint.description.contains("s3cr"), endpoint.description)
            XCTAssertFalse(RedisEndpoint.redacted(combined).contains("s3cr"), RedisEndpoint.redacted(combined))
        }
    }
}
