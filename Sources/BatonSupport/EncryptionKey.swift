import Foundation

/// One AES-256 key of a ``Keyring``, named by its key id (`kid`), which is stored next to every
/// secret it seals. Its description never shows the key.
public struct EncryptionKey: Sendable, Equatable, CustomStringConvertible, CustomDebugStringConvertible {
    /// The key id: 1 to 64 characters of `[A-Za-z0-9._-]`.
    public let kid: String
    /// The 32 key bytes, for ``AESGCM``. Never print, log or store them.
    public let bytes: [UInt8]

    /// A key from its id and bytes.
    /// - Throws: ``KeyringError/invalidKid(source:position:)`` (position 1) for a bad id, or
    ///   ``KeyringError/wrongKeyLength(source:position:kid:length:)`` when `bytes` is not 32 bytes.
    public init(kid: String, bytes: [UInt8]) throws(KeyringError) {
        guard Self.isValidKid(kid) else { throw .invalidKid(source: "a key", position: 1) }
        guard bytes.count == AESGCM.keyLength else {
            throw .wrongKeyLength(source: "a key", position: 1, kid: kid, length: bytes.count)
        }
        self.kid = kid
        self.bytes = bytes
    }

    /// A new random key (32 bytes from `RAND_bytes`).
    /// - Parameter kid: its id; default ``defaultKid(now:)``.
    public static func generate(kid: String? = nil) throws -> EncryptionKey {
        try EncryptionKey(kid: kid ?? defaultKid(), bytes: SecureRandom.bytes(AESGCM.keyLength))
    }

    /// `k` + the UTC date as `YYYYMMDD` + 4 random hex digits, e.g. `k20261125a3f0`: sorts by date,
    /// and two keys made the same day still differ.
    public static func defaultKid(now: Date = Date()) throws -> String {
        let day = Calendar(identifier: .gregorian).dateComponents(in: TimeZone(identifier: "UTC")!, from: now)
        let date = [(day.year!, 4), (day.month!, 2), (day.day!, 2)].map { value, width in
            let digits = String(value)
            return String(repeating: "0", count: max(0, width - digits.count)) + digits
        }
        return "k" + date.joined() + Digest.hex(try SecureRandom.bytes(2))
    }

    /// Whether `kid` is 1 to 64 characters of `[A-Za-z0-9._-]`.
    public static func isValidKid(_ kid: String) -> Bool {
        (1...64).contains(kid.utf8.count)
            && kid.utf8.allSatisfy { byte in
                switch byte {
                case UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "a")...UInt8(ascii: "z"),
                    UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "."), UInt8(ascii: "_"), UInt8(ascii: "-"):
                    return true
                default: return false
                }
            }
    }

    /// The key as a keyring entry, `kid:base64`: the text `baton keygen` prints. This is the key
    /// itself; it belongs only in `BATON_ENCRYPTION_KEYS` or a 0600 keys file.
    public var keyringEntry: String { "\(kid):\(Data(bytes).base64EncodedString())" }

    public var description: String { "EncryptionKey(kid: \(kid), \(bytes.count) bytes not shown)" }
    public var debugDescription: String { description }
}
