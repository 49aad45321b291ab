import BatonSupport
import XCTest

final class RedisURLCredentialsTests: XCTestCase {
    func testPasswordsAreFoundWhereTheParserReadsThem() {
        for url in [
            "redis://u:pw@h:6379/0", "redis://pw@h", "rediss://u:p%40w@h/0?tls_ca_file=/ca", "unix://u:pw@/s.sock",
            "redis://h/0?password=pw", "unix:///s.sock?db=1&password=pw",
            "redis-sentinel://u:pw@s1:26379,s2:26379/0#baton",
        ] {
            XCTAssertTrue(RedisURLCredentials.hasPassword(url), url)
        }
        for url in [
            "redis://h:6379/0", "redis://u:@h/0", "redis://@h", "unix:///s.sock?db=1", "rediss://h/0?tls_ca_file=/a@b",
            "redis-sentinel://s1,s2/0#baton", "not a url",
        ] {
            XCTAssertFalse(RedisURLCredentials.hasPassword(url), url)
        }
    }

    func testAPasswordIsInsertedEncodedAndTheUserKept() {
        let password = "p@ss:w/rd?#%é"
        let encoded = "p%40ss%3Aw%2Frd%3F%23%25%C3%A9"
        XCTAssertEqual(
            RedisURLCredentials.inserting(password: password, into: "redis://h:6379/0"), "redis://:\(encoded)@h:6379/0")
        XCTAssertEqual(
            RedisURLCredentials.inserting(password: password, into: "redis://coordinator:@h/0"),
            "redis://coordinator:\(encoded)@h/0")
        XCTAssertEqual(
            RedisURLCredentials.inserting(password: "pw", into: "redis-sentinel://u:@s1,s2:26380/0#baton"),
            "redis-sentinel://u:pw@s1,s2:26380/0#baton")
        XCTAssertEqual(
            RedisURLCredentials.inserting(password: "pw", into: "unix:///run/redis.sock?db=2"),
            "unix://:pw@/run/redis.sock?db=2")
        XCTAssertEqual(RedisURLCredentials.inserting(password: "pw", into: "redis://@h"), "redis://:pw@h")
    }

    func testTwoPasswordsAreRefused() {
        XCTAssertNil(RedisURLCredentials.inserting(password: "pw", into: "redis://u:other@h"))
        XCTAssertNil(RedisURLCredentials.inserting(password: "pw", into: "redis://other@h"))
        XCTAssertNil(RedisURLCredentials.inserting(password: "pw", into: "redis://h/0?password=other"))
        XCTAssertNil(RedisURLCredentials.inserting(password: "pw", into: "h:6379"))
    }
}
