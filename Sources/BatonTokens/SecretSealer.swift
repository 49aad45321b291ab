import BatonSupport
import Foundation

/// Seals and opens refresh tokens at rest (``SecretEnvelope``, and the spool of rotated tokens)
/// with the keyring of ``BatonSupport/SecretEncryption``: AES-256-GCM under the primary key, a
/// fresh random 96-bit IV per write, and additional authenticated data that binds each
/// ciphertext to its place, so a sealed token copied to another service's key, to another key
/// prefix, or given another fence, identity or client does not open.
///
/// With `.none` it writes plain (v1) envelopes, and still refuses to pretend it can read sealed
/// ones (``TokenStoreError/unknownKey(service:kid:)``).
public struct SecretSealer: Sendable {
    /// The `alg` of a sealed envelope.
    public static let algorithm = "A256GCM"

    /// The key prefix of the store (part of the binding).
    public let prefix: String
    /// The keys.
    public let encryption: SecretEncryption

    /// A sealer for secrets under `prefix`.
    public init(prefix: String, encryption: SecretEncryption) {
        self.prefix = prefix
        self.encryption = encryption
    }

    // MARK: - Envelopes

    /// The stored form of `envelope` for `service`: a v2 envelope sealed under the primary key,
    /// or with no keyring a plain v1 envelope.
    public func seal(_ envelope: SecretEnvelope, service: String) throws -> [UInt8] {
        var object: [String: Any] = ["fence": envelope.fence]
        if let client = envelope.client { object["client"] = client }
        if let keyring = encryption.keyring {
            let sealed = try seal(
                envelope.refreshToken, under: keyring.primary,
                binding: secretBinding(
                    service: service, fence: envelope.fence, identity: envelope.identity,
                    client: envelope.client))
            object.merge(sealed.fields) { new, _ in new }
            object["v"] = 2
            object["alg"] = Self.algorithm
            object["id"] = envelope.identity
        } else {
            object["v"] = 1
            object["alg"] = "none"
            object["kid"] = NSNull()
            object["refresh_token"] = envelope.refreshToken
        }
        return Array(
            try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .withoutEscapingSlashes]))
    }

    /// Parses and opens a stored envelope of `service`.
    /// - Throws: ``TokenStoreError/corruptSecret(service:reason:)`` for a damaged envelope,
    ///   ``TokenStoreError/unknownKey(service:kid:)`` when it is sealed under a key this keyring
    ///   lacks, ``TokenStoreError/undecryptable(service:kid:)`` when the key does not open it.
    public func open(_ bytes: [UInt8], service: String) throws -> SecretEnvelope {
        try open(SecretEnvelope.decode(bytes, service: service), service: service)
    }

    /// Opens a parsed envelope (see ``open(_:service:)-([UInt8],_)``).
    public func open(_ stored: SecretEnvelope.Stored, service: String) throws -> SecretEnvelope {
        switch stored.content {
        case .plain(let token):
            return SecretEnvelope(refreshToken: token, fence: stored.fence, client: stored.client)
        case .sealed(let kid, let sealed):
            let binding = secretBinding(
                service: service, fence: stored.fence, identity: stored.identity, client: stored.client)
            let token = try open(SealedText(kid: kid, sealed: sealed), binding: binding) {
                TokenStoreError.unknownKey(service: service, kid: kid)
            } failed: {
                TokenStoreError.undecryptable(service: service, kid: kid)
            }
            // The identity is outside the ciphertext but inside the binding: it cannot disagree.
            return SecretEnvelope(refreshToken: token, fence: stored.fence, client: stored.client, kid: kid)
        }
    }

    /// Whether a stored envelope is already what ``seal(_:service:)`` would write now: sealed under
    /// the primary key (or plain when there is no keyring).
    public func isCurrent(_ stored: SecretEnvelope.Stored) -> Bool {
        stored.kid == encryption.keyring?.primary.kid
    }

    private func secretBinding(service: String, fence: Int64, identity: String, client: String?) -> String {
        "baton-secret-v2\n\(prefix)\n\(service)\n\(fence)\n\(identity)\n\(client ?? "")"
    }

    // MARK: - Any text

    /// Seals `text` under the primary key with `binding` as additional data; `nil` without a keyring.
    func sealIfKeyed(_ text: String, binding: String) throws -> SealedText? {
        guard let keyring = encryption.keyring else { return nil }
        return try seal(text, under: keyring.primary, binding: binding)
    }

    /// Opens `text`, sealed under `binding`.
    /// - Parameters:
    ///   - unknown: the error for a kid this keyring lacks.
    ///   - failed: the error for a key that does not open it (another key, or a changed binding).
    func open(
        _ text: SealedText, binding: String, unknown: () -> any Error, failed: () -> any Error
    ) throws -> String {
        guard let key = encryption.keyring?.key(kid: text.kid) else { throw unknown() }
        let plaintext: [UInt8]
        do {
            plaintext = try AESGCM.open(text.sealed, key: key.bytes, additionalData: Array(binding.utf8))
        } catch {
            throw failed()
        }
        guard let text = String(validating: plaintext, as: UTF8.self), !text.isEmpty else { throw failed() }
        return text
    }

    private func seal(_ text: String, under key: EncryptionKey, binding: String) throws -> SealedText {
        SealedText(
            kid: key.kid,
            sealed: try AESGCM.seal(Array(text.utf8), key: key.bytes, additionalData: Array(binding.utf8)))
    }
}

/// Sealed text in JSON: `kid`, and `iv`, `tag`, `ct` in base64. One reader and one writer of
/// these fields, for envelopes and spool files alike.
struct SealedText: Sendable, Equatable {
    /// The key it is sealed under.
    let kid: String
    /// IV, ciphertext and tag.
    let sealed: AESGCM.Sealed

    /// The JSON fields.
    var fields: [String: Any] {
        [
            "kid": kid, "iv": Data(sealed.iv).base64EncodedString(), "tag": Data(sealed.tag).base64EncodedString(),
            "ct": Data(sealed.ciphertext).base64EncodedString(),
        ]
    }

    init(kid: String, sealed: AESGCM.Sealed) {
        self.kid = kid
        self.sealed = sealed
    }

    /// Reads the fields of `object`; `nil` when one is missing, not base64, or the kid is invalid.
    init?(fields object: [String: Any]) {
        func bytes(_ name: String) -> [UInt8]? {
            (object[name] as? String).flatMap { Data(base64Encoded: $0) }.map(Array.init)
        }
        guard let kid = object["kid"] as? String, EncryptionKey.isValidKid(kid), let iv = bytes("iv"),
            let tag = bytes("tag"), let ct = bytes("ct"), !ct.isEmpty
        else { return nil }
        self.init(kid: kid, sealed: AESGCM.Sealed(iv: iv, ciphertext: ct, tag: tag))
    }
}
