/// A keyring that cannot be used. Entries are named by position (1-based, blank entries not
/// counted) and, when it is well formed, by kid; no case ever carries key material or the text of
/// an entry.
public enum KeyringError: Error, Equatable, Sendable, CustomStringConvertible {
    /// No entries at all.
    case empty(source: String)
    /// An entry without the `kid:` prefix.
    case missingKid(source: String, position: Int)
    /// A kid that is not 1 to 64 characters of `[A-Za-z0-9._-]` (not shown: it may be a pasted key).
    case invalidKid(source: String, position: Int)
    /// Key text that is not valid base64.
    case invalidBase64(source: String, position: Int, kid: String)
    /// A key that does not decode to exactly 32 bytes.
    case wrongKeyLength(source: String, position: Int, kid: String, length: Int)
    /// A kid used by an earlier entry.
    case duplicateKid(source: String, position: Int, kid: String, firstPosition: Int)
    /// A keys file that group or others may read or write.
    case insecureKeysFile(path: String, mode: UInt16)
    /// A keys file that cannot be opened or read.
    case unreadableKeysFile(path: String, reason: String)

    private static let howToMake = "make a key with `baton keygen`"

    public var description: String {
        switch self {
        case .empty(let source):
            return "\(source) holds no keys: add a `kid:base64` entry (\(Self.howToMake))"
        case .missingKid(let source, let position):
            return "\(source), entry \(position): not of the form `kid:base64` (\(Self.howToMake))"
        case .invalidKid(let source, let position):
            return "\(source), entry \(position): the kid must be 1 to 64 characters of [A-Za-z0-9._-]"
        case .invalidBase64(let source, let position, let kid):
            return "\(source), entry \(position) (kid \(kid)): the key is not valid base64 (\(Self.howToMake))"
        case .wrongKeyLength(let source, let position, let kid, let length):
            return
                "\(source), entry \(position) (kid \(kid)): the key decodes to \(length) bytes, not \(AESGCM.keyLength) "
                + "(\(Self.howToMake))"
        case .duplicateKid(let source, let position, let kid, let firstPosition):
            return
                "\(source), entry \(position): kid \(kid) is already used by entry \(firstPosition); every key needs "
                + "its own kid"
        case .insecureKeysFile(let path, let mode):
            return "keys file " + SecretFile.insecureAdvice(path: path, mode: mode)
        case .unreadableKeysFile(let path, let reason):
            return "keys file \(path) cannot be read: \(reason)"
        }
    }
}
