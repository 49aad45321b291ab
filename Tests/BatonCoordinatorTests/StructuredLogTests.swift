import Foundation
import XCTest

@testable import BatonCoordinator

final class StructuredLogTests: XCTestCase {
    private final class Lines: @unchecked Sendable {
        private let lock = NSLock()
        private var lines: [String] = []
        func append(_ line: String) { lock.withLock { lines.append(line) } }
        var all: [String] { lock.withLock { lines } }
    }

    func testOneValidJSONObjectPerLineWithTheFixedFields() throws {
        let lines = Lines()
        let log = StructuredLog(replica: "replica-1", sink: lines.append)
        log.log(.info, "refreshed", service: "my-api", ["version": .number(12), "duration_ms": .number(5)])
        log.log(.warn, "refresh_failed", service: "a\"b", ["error_class": .text("line\nbreak \\ tab\t\u{01}")])
        log.log(.debug, "hidden")
        XCTAssertEqual(lines.all.count, 2, "below the minimum level is not written")
        let first = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(lines.all[0].utf8)) as? [String: Any])
        XCTAssertEqual(first["level"] as? String, "info")
        XCTAssertEqual(first["replica"] as? String, "replica-1")
        XCTAssertEqual(first["event"] as? String, "refreshed")
        XCTAssertEqual(first["service"] as? String, "my-api")
        XCTAssertEqual(first["version"] as? Int, 12)
        XCTAssertNotNil(
            ISO8601DateFormatter().date(
                from: (first["time"] as? String ?? "").replacingOccurrences(
                    of: #"\.\d{3}"#, with: "", options: .regularExpression)))
        XCTAssertFalse(lines.all[0].contains("\n"))
        let second = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(lines.all[1].utf8)) as? [String: Any])
        XCTAssertEqual(second["service"] as? String, "a\"b")
        XCTAssertEqual(
            second["error_class"] as? String, "line\nbreak \\ tab\t\u{01}", "escaped, and decodes back exactly")
    }
}
