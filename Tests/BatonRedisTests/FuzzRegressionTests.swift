import BatonRedis
import XCTest

/// Inputs `make fuzz` found (docs/FUZZING.md, Findings), kept as tests.
final class RedisURLFuzzRegressionTests: XCTestCase {
    /// A "://" after a mistyped scheme made `redacted` keep everything before it, password included.
    func testCredentialsBeforeALaterSchemeSeparatorAreHidden() {
        let url = "reel:/u/ser/user:pw@s1:23790/1#meel://***@s1:2379ter"
        XCTAssertEqual(RedisEndpoint.redacted(url), "***")
        XCTAssertEqual(RedisEndpoint.redacted("redis:/user:hunter22@host/0?x=a://b"), "***")
        XCTAssertThrowsError(try RedisEndpoint(url: url)) { error in
            XCTAssertFalse("\(error)".contains("user:pw"), "\(error)")
        }
        // A real scheme still shows what is not secret.
        XCTAssertEqual(RedisEndpoint.redacted("redis+x.y-z://u:p@h:1/0"), "redis+x.y-z://***@h:1/0")
    }
}
