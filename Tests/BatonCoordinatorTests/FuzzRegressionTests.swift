import XCTest

@testable import BatonCoordinator

/// Inputs `make fuzz` found (docs/FUZZING.md, Findings), kept as tests.
final class RefreshRequestFuzzRegressionTests: XCTestCase {
    private func version(_ text: String) throws -> Int64? {
        try RefreshRequest(entry: Array(text.utf8)).version
    }

    /// A numeric version above 2^53 went through `Double` and came back rounded (…332 as …248).
    func testLargeIntegerVersionsStayExact() throws {
        XCTAssertEqual(try version(#"{"service":"i","version":1333333333333333332}"#), 1_333_333_333_333_333_332)
        XCTAssertEqual(try version(#"{"service":"i","version":"1333333333333333332"}"#), 1_333_333_333_333_333_332)
        XCTAssertEqual(try version(#"{"service":"i","version":9223372036854775807}"#), Int64.max)
        XCTAssertEqual(try version(#"{"service":"i","version":12.0}"#), 12)
        XCTAssertThrowsError(try version(#"{"service":"i","version":1.5}"#))
        XCTAssertThrowsError(try version(#"{"service":"i","version":9223372036854775808}"#))
        XCTAssertThrowsError(try version(#"{"service":"i","version":1e300}"#))
    }
}
