import Foundation

/// The environment every configuration test parses with: `BATON_ENCRYPTION_KEYS` holds a keyring
/// (a fixed all-sevens key, test-only), since a configuration without keys is refused, plus the
/// test's own variables (which win).
func withTestKeyring(_ environment: [String: String]) -> [String: String] {
    environment.merging([testKeyringVariable: testKeyring]) { own, _ in own }
}

let testKeyringVariable = "BATON_ENCRYPTION_KEYS"
let testKeyring = "test:" + Data(repeating: 7, count: 32).base64EncodedString()
