/// What went wrong sealing or opening a secret, or drawing random bytes. No case carries a key, a
/// plaintext or a ciphertext: only lengths and the name of the libcrypto call that failed.
public enum CryptoError: Error, Equatable, Sendable, CustomStringConvertible {
    /// A key that is not exactly ``AESGCM/keyLength`` bytes.
    case invalidKeyLength(Int)
    /// An IV that is not exactly ``AESGCM/ivLength`` bytes.
    case invalidIVLength(Int)
    /// A tag that is not exactly ``AESGCM/tagLength`` bytes (truncated tags are refused).
    case invalidTagLength(Int)
    /// The tag did not verify: wrong key, or the ciphertext, tag, IV or additional data changed.
    case authenticationFailed
    /// A libcrypto call failed for a reason other than authentication (allocation, platform).
    case libcrypto(operation: String)

    public var description: String {
        switch self {
        case .invalidKeyLength(let length):
            return "an AES-256-GCM key must be \(AESGCM.keyLength) bytes, not \(length): make one with `baton keygen`"
        case .invalidIVLength(let length):
            return "an AES-256-GCM IV must be \(AESGCM.ivLength) bytes, not \(length): the stored secret is damaged"
        case .invalidTagLength(let length):
            return "an AES-256-GCM tag must be \(AESGCM.tagLength) bytes, not \(length): the stored secret is damaged"
        case .authenticationFailed:
            return
                "decryption failed: the key is not the one that encrypted this secret, or the secret, its IV, its tag or "
                + "its binding (additional data) was changed"
        case .libcrypto(let operation):
            return "libcrypto's \(operation) failed: check the OpenSSL installation (libssl3)"
        }
    }
}
