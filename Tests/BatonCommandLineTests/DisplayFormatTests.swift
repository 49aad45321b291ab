import BatonCommandLine
import Foundation
import XCTest

final class DisplayFormatTests: XCTestCase {
    func testAges() {
        XCTAssertEqual(DisplayFormat.age(milliseconds: 950), "950ms")
        XCTAssertEqual(DisplayFormat.age(milliseconds: 42_999), "42s")
        XCTAssertEqual(DisplayFormat.age(milliseconds: 190_000), "3m10s")
        XCTAssertEqual(DisplayFormat.age(milliseconds: 7_500_000), "2h5m")
        XCTAssertEqual(DisplayFormat.signedAge(milliseconds: -42_000), "-42s")
        XCTAssertEqual(DisplayFormat.signedAge(milliseconds: 0), "0ms")
    }

    func testMillisecondsAndRatios() {
        XCTAssertEqual(DisplayFormat.milliseconds(.microseconds(123)), "0.123 ms")
        XCTAssertEqual(DisplayFormat.milliseconds(.microseconds(1500), width: 7), "  1.500 ms")
        XCTAssertEqual(DisplayFormat.ratio(1.0666), "1.07")
    }

    func testClockTimeMatchesTheFormatItReplaced() {
        let formatter = DateFormatter()
        formatter.dateFormat = "HH:mm:ss.SSS"
        // Fixed instants, fractions that binary floating point cannot hold exactly among them.
        let instants: [TimeInterval] = [
            1_764_000_000.045, 1_764_012_345.999, 1_764_090_427.8219999, 1_764_090_427.8215, 1_764_090_427.0005,
        ]
        for date in instants.map(Date.init(timeIntervalSince1970:)) {
            XCTAssertEqual(DisplayFormat.clockTime(date), formatter.string(from: date))
        }
    }

    func testColumns() {
        XCTAssertEqual(DisplayFormat.column("ab", width: 4), "ab  ")
        XCTAssertEqual(DisplayFormat.column("abcd", width: 4), "abcd ")
    }

    func testOptionNamesInText() {
        XCTAssertEqual(
            CommandSpecification.optionNames(in: "baton x [--ttl 30s] --force -- CMD [--json | --header]"),
            ["ttl", "force", "json", "header"])
    }

    func testOptionValues() throws {
        let spec = CommandSpecification(
            name: "t", usage: [], options: [.value("ttl", "30s"), .value("n", "N")], discussion: "")
        let parsed = try spec.parse(["--ttl", "5s", "--n", "0"])
        XCTAssertEqual(try parsed.duration("ttl", default: .seconds(1)), .seconds(5))
        XCTAssertEqual(try parsed.count("n", default: 3, allowZero: true), 0)
        XCTAssertThrowsError(try parsed.count("n", default: 3)) { error in
            XCTAssertEqual((error as? UsageError)?.message, "--n must be a positive whole number, not '0'")
        }
        XCTAssertThrowsError(try spec.parse(["--ttl", "5"]).duration("ttl", default: .zero)) { error in
            XCTAssertEqual(
                (error as? UsageError)?.message,
                "--ttl '5' is not a duration: write a whole number and a unit, as in 250ms, 30s, 5m, 1h")
        }
    }
}
