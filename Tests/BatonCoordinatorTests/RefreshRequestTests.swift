import XCTest

@testable import BatonCoordinator

/// Parsing of forced-refresh list entries (no server needed).
final class RefreshRequestTests: XCTestCase {
    private func parse(_ text: String) -> Result<RefreshRequest, RefreshRequest.Rejection> {
        Result { () throws(RefreshRequest.Rejection) in try RefreshRequest(entry: Array(text.utf8)) }
    }

    func testVersionForms() throws {
        XCTAssertEqual(try parse(#"{"service":"a","version":12}"#).get().version, 12)
        XCTAssertEqual(try parse(#"{"service":"a","version":1}"#).get().version, 1, "1 is a number, not true")
        XCTAssertEqual(try parse(#"{"service":"a","version":"12"}"#).get().version, 12, "n8n may send a string")
        XCTAssertNil(try parse(#"{"service":"a"}"#).get().version)
        XCTAssertNil(try parse(#"{"service":"a","version":null}"#).get().version)
    }

    func testRejections() {
        for bad in [
            #"{"service":"a","version":true}"#, #"{"service":"a","version":1.5}"#, #"{"service":"a","version":"x"}"#,
            #"{"service":"a","version":[1]}"#, #"{"version":1}"#, "[]", "not json", #"{"service":"a","version":1e300}"#,
        ] {
            guard case .failure(.malformed) = parse(bad) else { return XCTFail("accepted \(bad)") }
        }
        let huge = #"{"service":"a","pad":""# + String(repeating: "x", count: RefreshRequest.maxEntryBytes) + #""}"#
        XCTAssertEqual(parse(huge).failure, .oversized(bytes: huge.utf8.count))
        XCTAssertFalse(RefreshRequest.Rejection.oversized(bytes: 5000).description.contains("x"))
    }
}

private extension Result {
    var failure: Failure? { if case .failure(let error) = self { return error } else { return nil } }
}
