import Foundation

/// The encryption keys for secrets at rest: the first (primary) seals new secrets, every key
/// opens the secrets sealed under its kid, so keys rotate by putting a new one first and keeping
/// the old ones until everything is re-encrypted.
///
/// Text form (`BATON_ENCRYPTION_KEYS` or a keys file): `kid:base64(32 bytes)` entries separated by
/// commas or newlines; surrounding spaces and blank entries are ignored.
public struct Keyring: Sendable, CustomStringConvertible {
    /// Every key, primary first.
    public let keys: [EncryptionKey]

    /// The key that seals new secrets: the first entry.
    public var primary: EncryptionKey { keys[0] }

    /// The key with id `kid`, if the keyring has it.
    public func key(kid: String) -> EncryptionKey? { keys.first { $0.kid == kid } }

    /// Kids only, never key material.
    public var description: String { "Keyring(\(keys.map(\.kid).joined(separator: ", ")); primary \(primary.kid))" }

    /// Parses keyring text.
    /// - Parameters:
    ///   - text: the entries.
    ///   - source: where the text came from, for errors (`BATON_ENCRYPTION_KEYS`, `keys file PATH`).
    /// - Throws: ``KeyringError`` naming the first bad entry by position (and kid when it is valid).
    public init(parsing text: String, source: String) throws(KeyringError) {
        let entries = text.split(whereSeparator: { $0 == "," || $0.isNewline })
            .map { $0.trimmingCharacters(in: .whitespaces) }
            .filter { !$0.isEmpty }
        guard !entries.isEmpty else { throw .empty(source: source) }
        var keys: [EncryptionKey] = []
        for (index, entry) in entries.enumerated() {
            let position = index + 1
            guard let colon = entry.firstIndex(of: ":") else { throw .missingKid(source: source, position: position) }
            let kid = String(entry[..<colon])
            guard EncryptionKey.isValidKid(kid) else { throw .invalidKid(source: source, position: position) }
            if let first = keys.firstIndex(where: { $0.kid == kid }) {
                throw .duplicateKid(source: source, position: position, kid: kid, firstPosition: first + 1)
            }
            guard let bytes = Data(base64Encoded: String(entry[entry.index(after: colon)...])) else {
                throw .invalidBase64(source: source, position: position, kid: kid)
            }
            guard bytes.count == AESGCM.keyLength else {
                throw .wrongKeyLength(source: source, position: position, kid: kid, length: bytes.count)
            }
            keys.append(try EncryptionKey(kid: kid, bytes: Array(bytes)))
        }
        self.keys = keys
    }

    /// Reads and parses a keys file, refusing one that group or others may access (mode must be
    /// 0600 or stricter), since the keys open every stored refresh token.
    /// - Throws: ``KeyringError/insecureKeysFile(path:mode:)`` (the message says `chmod 600 PATH`),
    ///   ``KeyringError/unreadableKeysFile(path:reason:)``, or a parse error.
    public static func load(keysFile path: String) throws(KeyringError) -> Keyring {
        let text: String
        do {
            text = try OwnerOnlyFile.read(path)
        } catch {
            switch error {
            case .insecure(let mode): throw .insecureKeysFile(path: path, mode: mode)
            case .unreadable(let reason): throw .unreadableKeysFile(path: path, reason: reason)
            }
        }
        return try Keyring(parsing: text, source: "keys file \(path)")
    }
}
