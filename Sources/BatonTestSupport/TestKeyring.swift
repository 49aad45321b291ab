import BatonSupport

/// Encryption keys for tests only (never use them anywhere else): a fixed keyring, so that every
/// process of a test (in-process stores, `baton` children, the chaos tool) opens what the others
/// sealed.
public enum TestKeyring {
    /// The primary test key, as a `kid:base64` entry.
    public static let primaryEntry = "ktest-primary:bDUXH2KLO8JK6pjlPohr7VkLL1BveQ/YJGniT4iwIOY="
    /// A second test key, for rotation tests (not in text).
    public static let nextEntry = "ktest-next:LbyyWxNynq+iq2L6/mUPXXLv8Vm5w2e6g3jDinu/g1g="
    /// The keyring text: the primary key alone (`BATON_ENCRYPTION_KEYS`).
    public static let text = primaryEntry

    /// The keyring of text.
    public static var encryption: SecretEncryption { keyring(text) }

    /// The keyring of `text` (test entries only: a malformed one is a bug in the test).
    public static func keyring(_ text: String) -> SecretEncryption {
        .keyring(try! Keyring(parsing: text, source: "a test keyring"))
    }
}
