import Foundation
import XCTest

@testable import BatonSupport

/// Keyring text, its errors (which name entries but never show keys), and the keys file's mode check.
final class KeyringTests: XCTestCase {
    private let first = Data(Array(UInt8(0)..<32)).base64EncodedString()
    private let second = Data(Array(repeating: UInt8(0xab), count: 32)).base64EncodedString()

    private func assertRefused(
        _ text: String, _ expected: KeyringError, line: UInt = #line
    ) {
        XCTAssertThrowsError(try Keyring(parsing: text, source: "BATON_ENCRYPTION_KEYS"), line: line) { error in
            XCTAssertEqual(error as? KeyringError, expected, line: line)
            let description = "\(error)"
            for material in [first, second, "c2hvcnQ=", "not*base64"] {
                XCTAssertFalse(description.contains(material), "error shows key text: \(description)", line: line)
            }
        }
    }

    // MARK: - Parsing

    func testEntriesSeparatedByCommasOrNewlinesThePrimaryFirst() throws {
        let keyring = try Keyring(parsing: " new:\(second) ,\n\nold-1.a_b:\(first)\n,", source: "BATON_ENCRYPTION_KEYS")
        XCTAssertEqual(keyring.keys.map(\.kid), ["new", "old-1.a_b"])
        XCTAssertEqual(keyring.primary.kid, "new")
        XCTAssertEqual(keyring.primary.bytes, Array(repeating: 0xab, count: 32))
        XCTAssertEqual(keyring.key(kid: "old-1.a_b")?.bytes, Array(UInt8(0)..<32))
        XCTAssertNil(keyring.key(kid: "gone"))
        XCTAssertEqual("\(keyring)", "Keyring(new, old-1.a_b; primary new)")
        XCTAssertFalse("\(keyring.primary)".contains(second), "a key's description hides its bytes")
        XCTAssertFalse(String(reflecting: keyring.primary).contains(second))
    }

    func testEveryKeySealsAndOpensWithItsOwnKid() throws {
        let keyring = try Keyring(parsing: "a:\(first)\nb:\(second)", source: "test")
        let sealed = try AESGCM.seal(Array("token".utf8), key: keyring.primary.bytes)
        XCTAssertEqual(try AESGCM.open(sealed, key: keyring.key(kid: "a")!.bytes), Array("token".utf8))
        XCTAssertThrowsError(try AESGCM.open(sealed, key: keyring.key(kid: "b")!.bytes))
    }

    func testEmptyTextIsRefused() {
        assertRefused("", .empty(source: "BATON_ENCRYPTION_KEYS"))
        assertRefused(" ,\n , ", .empty(source: "BATON_ENCRYPTION_KEYS"))
    }

    func testBadEntriesAreNamedByPositionAndKid() {
        let source = "BATON_ENCRYPTION_KEYS"
        assertRefused("a:\(first),b:not*base64", .invalidBase64(source: source, position: 2, kid: "b"))
        assertRefused("a:\(first)\n\nb:c2hvcnQ=", .wrongKeyLength(source: source, position: 2, kid: "b", length: 5))
        assertRefused(
            "a:" + Data(Array(repeating: UInt8(1), count: 33)).base64EncodedString(),
            .wrongKeyLength(source: source, position: 1, kid: "a", length: 33))
        assertRefused(
            "a:\(first),b:\(second),a:\(second)", .duplicateKid(source: source, position: 3, kid: "a", firstPosition: 1)
        )
        assertRefused("\(first)", .missingKid(source: source, position: 1))
        assertRefused("a:\(first),:\(second)", .invalidKid(source: source, position: 2))
        assertRefused("bad/kid:\(second)", .invalidKid(source: source, position: 1))
        assertRefused("\(String(repeating: "k", count: 65)):\(second)", .invalidKid(source: source, position: 1))
        assertRefused("b:", .wrongKeyLength(source: source, position: 1, kid: "b", length: 0))
    }

    func testKidRule() {
        for good in ["k", "k20261125a3f0", "A.b_c-9", String(repeating: "x", count: 64)] {
            XCTAssertTrue(EncryptionKey.isValidKid(good), good)
        }
        for bad in ["", String(repeating: "x", count: 65), "a b", "a:b", "a/b", "a+b", "é", "a\n"] {
            XCTAssertFalse(EncryptionKey.isValidKid(bad), bad)
        }
    }

    func testGeneratedKeysAreFreshAndTheDefaultKidCarriesTheUTCDate() throws {
        let noon = Date(timeIntervalSince1970: 1_764_072_000)  // 2025-11-25 12:00 UTC
        let kid = try EncryptionKey.defaultKid(now: noon)
        XCTAssertTrue(kid.hasPrefix("k20251125"), kid)
        XCTAssertEqual(kid.count, 13, kid)
        XCTAssertTrue(kid.dropFirst(9).allSatisfy(\.isHexDigit), kid)
        let newYear = Date(timeIntervalSince1970: 1_767_225_599)  // 2025-12-31 23:59:59 UTC
        XCTAssertTrue(try EncryptionKey.defaultKid(now: newYear).hasPrefix("k20251231"))

        let one = try EncryptionKey.generate()
        let other = try EncryptionKey.generate(kid: "named")
        XCTAssertNotEqual(one.bytes, other.bytes)
        XCTAssertEqual(other.kid, "named")
        let parsed = try Keyring(parsing: [one.keyringEntry, other.keyringEntry].joined(separator: ","), source: "t")
        XCTAssertEqual(parsed.keys, [one, other])
    }

    // MARK: - Keys file

    private func keysFile(_ text: String, mode: Int) throws -> String {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("baton-keys-\(UUID().uuidString)").path
        XCTAssertTrue(FileManager.default.createFile(atPath: path, contents: Data(text.utf8)))
        addTeardownBlock { try? FileManager.default.removeItem(atPath: path) }
        try FileManager.default.setAttributes([.posixPermissions: mode], ofItemAtPath: path)
        return path
    }

    func testAKeysFileWithMode0600Or0400Loads() throws {
        for mode in [0o600, 0o400] {
            let path = try keysFile("a:\(first)\nb:\(second)\n", mode: mode)
            let keyring = try Keyring.load(keysFile: path)
            XCTAssertEqual(keyring.keys.map(\.kid), ["a", "b"], "mode \(String(mode, radix: 8))")
        }
    }

    func testAKeysFileOthersMayReadIsRefusedWithTheChmodToRun() throws {
        for mode in [0o644, 0o640, 0o604, 0o660, 0o606] {
            let path = try keysFile("a:\(first)\n", mode: mode)
            XCTAssertThrowsError(try Keyring.load(keysFile: path)) { error in
                XCTAssertEqual(error as? KeyringError, .insecureKeysFile(path: path, mode: UInt16(mode)))
                XCTAssertTrue("\(error)".contains("chmod 600 \(path)"), "\(error)")
                XCTAssertFalse("\(error)".contains(first))
            }
        }
    }

    func testAKeysFileErrorNamesTheFileAndTheEntry() throws {
        let path = try keysFile("a:\(first)\nb:\(second)\na:\(second)\n", mode: 0o600)
        XCTAssertThrowsError(try Keyring.load(keysFile: path)) { error in
            XCTAssertEqual(
                error as? KeyringError,
                .duplicateKid(source: "keys file \(path)", position: 3, kid: "a", firstPosition: 1))
        }
        let missing = path + "-missing"
        XCTAssertThrowsError(try Keyring.load(keysFile: missing)) { error in
            guard case .unreadableKeysFile(let reported, _) = error as? KeyringError else {
                return XCTFail("\(error)")
            }
            XCTAssertEqual(reported, missing)
        }
    }
}
