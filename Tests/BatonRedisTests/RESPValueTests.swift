import BatonRedis
import XCTest

/// Reply accessors and script hashing: no server needed.
final class RESPValueTests: XCTestCase {
    func testAccessors() {
        XCTAssertEqual(RESPValue.bulk(Array("42".utf8)).integer, 42)
        XCTAssertEqual(RESPValue.integer(7).integer, 7)
        XCTAssertNil(RESPValue.null.integer)
        XCTAssertEqual(RESPValue.status("OK").string, "OK")
        XCTAssertNil(RESPValue.bulk([0xff, 0xfe]).string, "invalid UTF-8 is not text")
        XCTAssertEqual(RESPValue.bulk([0xff, 0xfe]).bytes, [0xff, 0xfe])
        XCTAssertTrue(RESPValue.null.isNull)
        XCTAssertEqual(RESPValue.error("ERR x").errorMessage, "ERR x")
        XCTAssertEqual(RESPValue.array([.integer(1)]).array, [.integer(1)])
    }

    func testServerErrorCode() {
        XCTAssertEqual(RedisServerError(message: "WRONGTYPE Operation against a key", command: "GET").code, "WRONGTYPE")
        XCTAssertEqual(RedisServerError(message: "NOPERM", command: "SET").code, "NOPERM")
    }

    func testKnownSHA1() {
        // `echo -n "return 1" | sha1sum`
        XCTAssertEqual(RedisScript("return 1").sha1, "e0e1f9fabfc9d4800c877a703b823ac0578ff8db")
    }

    func testBackoffStaysWithinItsBounds() {
        let policy = ReconnectPolicy(
            initialDelay: .milliseconds(10), maxDelay: .milliseconds(200), giveUpAfter: .seconds(1))
        for attempt in 0..<40 {
            let delay = policy.delay(beforeAttempt: attempt)
            XCTAssertGreaterThanOrEqual(delay, .zero)
            XCTAssertLessThanOrEqual(delay, .milliseconds(min(200, 10 << min(attempt, 20))))
        }
    }
}
