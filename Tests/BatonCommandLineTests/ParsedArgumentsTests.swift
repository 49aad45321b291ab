import BatonCommandLine
import XCTest

final class ParsedArgumentsTests: XCTestCase {
    private let spec = ParsedArguments.Specification(
        valueOptions: ["ttl", "wait", "redis"], flags: ["force", "json"], positionals: 1...1)

    func testOptionsFlagsAndPositionals() throws {
        let parsed = try ParsedArguments(["NAME", "--ttl", "30s", "--wait=5s", "--force"], specification: spec)
        XCTAssertEqual(parsed.positionals, ["NAME"])
        XCTAssertEqual(parsed.value("ttl"), "30s")
        XCTAssertEqual(parsed.value("wait"), "5s")
        XCTAssertTrue(parsed.has("force"))
        XCTAssertFalse(parsed.has("json"))
        XCTAssertNil(parsed.trailing)
    }

    func testTrailingCommandKeepsItsOwnOptions() throws {
        let spec = ParsedArguments.Specification(valueOptions: ["ttl"], positionals: 1...1, takesTrailingCommand: true)
        let parsed = try ParsedArguments(["job", "--ttl", "1s", "--", "ls", "--ttl", "-la"], specification: spec)
        XCTAssertEqual(parsed.trailing, ["ls", "--ttl", "-la"])
        XCTAssertThrowsError(try ParsedArguments(["job"], specification: spec)) { error in
            XCTAssertEqual((error as? UsageError)?.message, "missing the command to run after '--'")
        }
        XCTAssertThrowsError(try ParsedArguments(["job", "--"], specification: spec))
    }

    func testStrictErrorsNameTheBadWord() {
        func message(_ words: [String]) -> String? {
            do {
                _ = try ParsedArguments(words, specification: spec)
                return nil
            } catch { return (error as? UsageError)?.message }
        }
        XCTAssertEqual(message(["NAME", "--tll", "3s"]), "unknown option '--tll'; did you mean '--ttl'?")
        XCTAssertEqual(message(["NAME", "--colour"]), "unknown option '--colour'")
        XCTAssertEqual(message(["NAME", "--ttl"]), "--ttl needs a value")
        XCTAssertEqual(message(["NAME", "--ttl", "--force"]), "--ttl needs a value")
        XCTAssertEqual(message(["NAME", "--force=yes"]), "--force is a flag and takes no value")
        XCTAssertEqual(message([]), "missing argument")
        XCTAssertEqual(message(["A", "B"]), "unexpected argument 'B'")
        XCTAssertEqual(message(["NAME", "-x"]), "unknown option '-x'")
        XCTAssertEqual(message(["NAME", "--", "ls"]), "unexpected '--': this command does not run another command")
    }

    func testHelpSkipsTheArgumentCount() throws {
        XCTAssertTrue(try ParsedArguments(["--help"], specification: spec).has("help"))
        XCTAssertTrue(try ParsedArguments(["-h"], specification: spec).has("help"))
    }

    func testNegativeNumbersArePositionals() throws {
        let spec = ParsedArguments.Specification(positionals: 0...2)
        XCTAssertEqual(try ParsedArguments(["-5", "3"], specification: spec).positionals, ["-5", "3"])
    }

    func testExitCodesAreDistinct() {
        let codes: [ExitCode] = [
            .success, .failure, .usage, .needsReauthorization, .providerUnavailable, .redisUnavailable,
            .tokenUnavailable, .timedOut, .lockLost, .commandNotFound,
        ]
        XCTAssertEqual(Set(codes.map(\.rawValue)).count, codes.count)
    }
}
