import BatonSupport
import Foundation
import XCTest

@testable import BatonConfig

/// `encryption` (`"none"` or `{"keys_file": PATH}`) and `BATON_ENCRYPTION_KEYS`, which wins.
final class EncryptionConfigurationTests: XCTestCase {
    private var folder: URL!
    /// Key text that must never come back in a message.
    private let keyText = Data(repeating: 42, count: 32).base64EncodedString()
    private var entry: String { "file-key:\(keyText)" }

    override func setUpWithError() throws {
        folder = FileManager.default.temporaryDirectory.appendingPathComponent("baton-encryption-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
    }

    override func tearDown() {
        try? FileManager.default.removeItem(at: folder)
    }

    /// A configuration whose `encryption` member is `encryption` (JSON text; `nil` leaves it out).
    private func document(_ encryption: String?) -> String {
        let member = encryption.map { "\"encryption\": \($0)," } ?? ""
        return """
            {
              \(member)
              "services": {"my-api": {"token_url": "https://auth.example.com/token", "client_id": "abc"}}
            }
            """
    }

    private func parse(_ encryption: String?, environment: [String: String] = [:]) throws -> BatonConfiguration {
        try BatonConfiguration.parse(
            Array(document(encryption).utf8), environment: environment, baseDirectory: folder.path, file: "test.json")
    }

    private func problems(_ encryption: String?, environment: [String: String] = [:]) -> [ConfigurationError.Problem] {
        guard let error = configurationError(parse: { try parse(encryption, environment: environment) }) else {
            return []
        }
        XCTAssertFalse(error.description.contains(keyText), "key material in: \(error)")
        return error.problems
    }

    @discardableResult
    private func writeKeys(_ text: String, name: String = "keys", mode: Int = 0o600) throws -> String {
        let path = folder.appendingPathComponent(name).path
        try text.write(toFile: path, atomically: true, encoding: .utf8)
        try FileManager.default.setAttributes([.posixPermissions: mode], ofItemAtPath: path)
        return path
    }

    func testAKeysFileRelativeToTheConfigurationIsLoaded() throws {
        try writeKeys("\(entry)\nold:\(Data(repeating: 1, count: 32).base64EncodedString())\n")
        let configuration = try parse(#"{"keys_file": "keys"}"#)
        XCTAssertEqual(configuration.encryption.keyring?.keys.map(\.kid), ["file-key", "old"])
        XCTAssertEqual(configuration.encryption.keyring?.primary.kid, "file-key")
        XCTAssertEqual(configuration.warnings, [])
    }

    func testAnAbsoluteKeysFileIsLoaded() throws {
        let path = try writeKeys(entry)
        XCTAssertEqual(try parse(#"{"keys_file": "\#(path)"}"#).encryption.keyring?.primary.kid, "file-key")
    }

    func testNoneIsAcceptedWithAWarning() throws {
        let configuration = try parse(#""none""#)
        guard case .none = configuration.encryption else { return XCTFail("\(configuration.encryption)") }
        XCTAssertEqual(configuration.warnings.count, 1)
        XCTAssertTrue(
            configuration.warnings[0].hasPrefix(#"encryption is "none": refresh tokens are stored in plain text"#),
            configuration.warnings[0])
    }

    func testNoKeyAnywhereIsAProblemThatSaysHowToMakeOne() {
        let found = problems(nil)
        XCTAssertEqual(found.map(\.path), ["encryption"])
        let message = found.first?.message ?? ""
        for part in [
            "encrypted at rest by default",
            "baton keygen > /etc/baton/encryption-keys && chmod 600 /etc/baton/encryption-keys",
            #""encryption": {"keys_file": "/etc/baton/encryption-keys"}"#, "BATON_ENCRYPTION_KEYS",
            #""encryption": "none""#,
        ] {
            XCTAssertTrue(message.contains(part), "'\(part)' missing from: \(message)")
        }
    }

    func testTheEnvironmentWinsOverTheFile() throws {
        let environment = ["BATON_ENCRYPTION_KEYS": "env-key:\(Data(repeating: 9, count: 32).base64EncodedString())"]
        // The file's keys file does not exist: with the environment set it is not read.
        let overFile = try parse(#"{"keys_file": "absent"}"#, environment: environment)
        XCTAssertEqual(overFile.encryption.keyring?.primary.kid, "env-key")
        let overNone = try parse(#""none""#, environment: environment)
        XCTAssertEqual(overNone.encryption.keyring?.primary.kid, "env-key")
        XCTAssertEqual(overNone.warnings, [])
        XCTAssertEqual(try parse(nil, environment: environment).encryption.keyring?.primary.kid, "env-key")
        // Empty counts as unset.
        XCTAssertEqual(problems(nil, environment: ["BATON_ENCRYPTION_KEYS": ""]).map(\.path), ["encryption"])
    }

    func testABadEnvironmentKeyringIsNamedWithoutItsKey() {
        let short = Data(repeating: 42, count: 16).base64EncodedString()
        let found = problems(#""none""#, environment: ["BATON_ENCRYPTION_KEYS": "env-key:\(short)"])
        XCTAssertEqual(found.map(\.path), ["BATON_ENCRYPTION_KEYS"])
        XCTAssertTrue(found.first?.message.contains("16 bytes") == true, "\(found)")
        XCTAssertFalse(found.description.contains(short), "\(found)")
    }

    func testAKeysFileOthersCanReadIsRefused() throws {
        let path = try writeKeys(entry, mode: 0o644)
        let found = problems(#"{"keys_file": "keys"}"#)
        XCTAssertEqual(found.map(\.path), ["encryption.keys_file"])
        XCTAssertTrue(found.first?.message.contains("chmod 600 \(path)") == true, "\(found)")
    }

    func testAMissingOrMalformedKeysFileIsAProblem() throws {
        let missing = problems(#"{"keys_file": "absent"}"#)
        XCTAssertEqual(missing.map(\.path), ["encryption.keys_file"])
        XCTAssertTrue(missing.first?.message.contains("cannot be read") == true, "\(missing)")

        try writeKeys("file-key:\(keyText.dropLast(4))")
        let malformed = problems(#"{"keys_file": "keys"}"#)
        XCTAssertEqual(malformed.map(\.path), ["encryption.keys_file"])
        XCTAssertFalse(malformed.description.contains(keyText.dropLast(4)), "\(malformed)")

        try writeKeys("")
        XCTAssertTrue(problems(#"{"keys_file": "keys"}"#).first?.message.contains("holds no keys") == true)
    }

    func testTheObjectFormIsChecked() {
        XCTAssertEqual(
            problems(#"{"key_file": "keys"}"#).map(\.description),
            [
                "encryption.key_file: unknown key at line 2 (did you mean 'keys_file'?)",
                "encryption.keys_file: missing: the file of keys `baton keygen` wrote (mode 0600)",
            ])
        let inline = problems(#"{"keys": "\#(entry)", "keys_file": "absent"}"#)
        XCTAssertEqual(inline.first?.path, "encryption.keys")
        XCTAssertTrue(inline.first?.message.contains("inline keys are refused") == true, "\(inline)")
        XCTAssertEqual(problems(#"{"keys_file": ""}"#).map(\.path), ["encryption.keys_file"])
        XCTAssertEqual(problems(#"{"keys_file": 7}"#).map(\.path), ["encryption.keys_file"])
    }

    func testOtherValuesAreRefusedWithoutQuotingThem() {
        let pasted = problems(#""\#(entry)""#)
        XCTAssertEqual(pasted.map(\.path), ["encryption"])
        XCTAssertTrue(pasted.first?.message.contains(#"the only string accepted is "none""#) == true, "\(pasted)")
        XCTAssertEqual(
            problems("true").map(\.description),
            [#"encryption: must be "none" or an object {"keys_file": PATH}, not true/false"#])
    }
}
