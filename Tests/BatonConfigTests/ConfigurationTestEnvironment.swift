import BatonConfig
import Foundation
import XCTest

/// The environment every configuration test parses with: `BATON_ENCRYPTION_KEYS` holds a keyring
/// (a fixed all-sevens key, test-only), since a configuration without keys is refused, plus the
/// test's own variables (which win).
func withTestKeyring(_ environment: [String: String]) -> [String: String] {
    environment.merging([testKeyringVariable: testKeyring]) { own, _ in own }
}

let testKeyringVariable = "BATON_ENCRYPTION_KEYS"
let testKeyring = "test:" + Data(repeating: 7, count: 32).base64EncodedString()

/// The `ConfigurationError` that `parse` throws; a test failure (at the caller's line) when it
/// parses, or throws anything else.
func configurationError(
    _ what: @autoclosure () -> String = "", file: StaticString = #filePath, line: UInt = #line,
    parse: () throws -> BatonConfiguration
) -> ConfigurationError? {
    do {
        _ = try parse()
        XCTFail("expected problems\(what().isEmpty ? "" : " with \(what())")", file: file, line: line)
    } catch let error as ConfigurationError {
        return error
    } catch {
        XCTFail("\(error)", file: file, line: line)
    }
    return nil
}
