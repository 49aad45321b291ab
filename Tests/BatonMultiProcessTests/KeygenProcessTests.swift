import BatonSupport
import BatonTestSupport
import Foundation
import XCTest

/// `baton keygen` through the real executable: its entries are accepted by the Keyring and never
/// repeat.
final class KeygenProcessTests: XCTestCase {
    private func keygen(_ arguments: [String] = []) throws -> String {
        let run = try BatonExecutable.run(["keygen"] + arguments, timeout: 30)
        XCTAssertEqual(run.status, 0, "baton keygen \(arguments) printed:\n\(run.output)")
        return run.output.trimmingCharacters(in: .whitespacesAndNewlines)
    }

    func testEntriesParseAsAKeyringAndNeverRepeat() throws {
        let dayBefore = try EncryptionKey.defaultKid(now: Date()).prefix(9)
        let entries = try (0..<5).map { _ in try keygen() }
        let dayAfter = try EncryptionKey.defaultKid(now: Date()).prefix(9)
        XCTAssertEqual(Set(entries).count, entries.count, "keygen repeated an entry: \(entries)")
        let keyring = try Keyring(parsing: entries.joined(separator: "\n"), source: "baton keygen output")
        XCTAssertEqual(Set(keyring.keys.map(\.bytes)).count, 5, "every key is new")
        for key in keyring.keys {
            XCTAssertEqual(key.bytes.count, 32)
            // `k` + today's UTC date (the runs may straddle midnight) + 4 hex digits.
            XCTAssertTrue([dayBefore, dayAfter].contains(key.kid.prefix(9)), "\(key.kid) vs \(dayBefore)")
            XCTAssertEqual(key.kid.count, 13, key.kid)
            XCTAssertTrue(key.kid.dropFirst(9).allSatisfy(\.isHexDigit), key.kid)
        }
    }

    func testAGivenKidIsUsedAndABadOneIsAUsageError() throws {
        let entry = try keygen(["--kid", "prod-2026.q4_a"])
        let keyring = try Keyring(parsing: entry, source: "baton keygen output")
        XCTAssertEqual(keyring.primary.kid, "prod-2026.q4_a")

        let refused = try BatonExecutable.run(["keygen", "--kid", "no/slashes"], timeout: 30)
        XCTAssertEqual(refused.status, 2, refused.output)
        XCTAssertTrue(refused.output.contains("--kid must be 1 to 64 characters"), refused.output)
        // A 32-byte key's base64 always ends in `=`; the error message has none.
        XCTAssertFalse(refused.output.contains("="), "no entry is printed for a refused kid: \(refused.output)")
    }
}
