import BatonRedis
import BatonSupport
import Foundation

/// A refresh token as the token layer handles it: the token in the clear, with the fence of the
/// write that stored it and the client it was issued to. In Redis (`prefix:{svc}:secret`) it is
/// stored as a versioned JSON envelope, sealed or not (``Stored``); ``SecretSealer`` converts.
///
/// Version 2, sealed (AES-256-GCM, the default):
/// ```json
/// {"alg":"A256GCM","client":"3f2a9c0d41b7e8aa","ct":"...","fence":12,"id":"5d41...","iv":"...","kid":"k20261125a3f0","tag":"...","v":2}
/// ```
/// Version 1, plain (`"encryption": "none"`, and every envelope written before encryption):
/// ```json
/// {"alg":"none","client":"3f2a9c0d41b7e8aa","fence":12,"kid":null,"refresh_token":"...","v":1}
/// ```
/// - `fence`: the version of the write; a rotated token is never replaced by an older one.
/// - `client`: the fingerprint of the client the token was issued to
///   (``clientFingerprint(tokenURL:clientID:grant:)``), so that a replica configured for another
///   client refuses to use it; absent in envelopes written before it existed.
/// - `id` (v2): the token's ``identity``, which the persist script compares (it cannot decrypt).
/// - `kid`, `iv`, `tag`, `ct` (v2): the key id, the 96-bit IV, the 128-bit tag and the
///   ciphertext, base64. The additional data binds the ciphertext to the key prefix, the
///   service, the fence, the identity and the client (``SecretSealer``).
public struct SecretEnvelope: Sendable, Hashable {
    /// The refresh token.
    public let refreshToken: String
    /// The fence of the write that stored it.
    public let fence: Int64
    /// The fingerprint of the client it was issued to, when known.
    public let client: String?
    /// The key it was sealed under; `nil` for a plain (v1) envelope.
    public let kid: String?

    /// Creates an envelope.
    public init(refreshToken: String, fence: Int64, client: String? = nil, kid: String? = nil) {
        self.refreshToken = refreshToken
        self.fence = fence
        self.client = client
        self.kid = kid
    }

    /// What identifies this refresh token in a write that was based on it: the SHA-1 (hex) of
    /// the token, as the scripts compute it for a plain envelope (`redis.sha1hex`) and read it
    /// from a sealed one (`id`). Fences alone cannot say it: the counter restarts when Redis
    /// loses its data. It stays the same when the token is re-encrypted (`baton rekey`), so a
    /// refresh in flight during a rekey still recognises the token it used.
    public var identity: String { Self.identity(of: refreshToken) }

    /// The ``identity`` of a refresh token.
    public static func identity(of refreshToken: String) -> String {
        Digest.sha1Hex(Array(refreshToken.utf8))
    }

    /// The fingerprint of a client: the first 16 hex digits of SHA-256 over the fields that
    /// decide which client a refresh token belongs to. A token issued under one fingerprint is
    /// `invalid_grant` under another, which would put the service in `needs_reauth` for everyone.
    public static func clientFingerprint(tokenURL: String, clientID: String, grant: String) -> String {
        let digest = Digest.sha256(Array("baton-client-v1\n\(tokenURL)\n\(clientID)\n\(grant)".utf8))
        return digest.prefix(8).map { String(format: "%02x", $0) }.joined()
    }

    /// An envelope as stored, parsed but not opened: what can be known without a key.
    public struct Stored: Sendable, Equatable {
        /// The fence of the write that stored it.
        public let fence: Int64
        /// The client fingerprint, when recorded.
        public let client: String?
        /// The token's ``SecretEnvelope/identity``.
        public let identity: String
        /// The token, in the clear or sealed.
        public let content: Content

        /// How the token is held.
        public enum Content: Sendable, Equatable {
            /// A v1 envelope: the token in the clear.
            case plain(String)
            /// A v2 envelope: sealed under `kid`.
            case sealed(kid: String, AESGCM.Sealed)
        }

        /// The key it is sealed under; `nil` when plain.
        public var kid: String? {
            if case .sealed(let kid, _) = content { return kid }
            return nil
        }
    }

    /// Parses a stored envelope (either version) without opening it.
    /// - Throws: ``TokenStoreError/corruptSecret(service:reason:)`` without quoting the content.
    public static func decode(_ bytes: [UInt8], service: String) throws -> Stored {
        func corrupt(_ reason: String) -> TokenStoreError { .corruptSecret(service: service, reason: reason) }
        guard let object = try? JSONSerialization.jsonObject(with: Data(bytes)) as? [String: Any] else {
            throw corrupt("not a JSON object")
        }
        let fence = (object["fence"] as? NSNumber)?.int64Value ?? 0
        let client = object["client"] as? String
        switch (object["v"] as? Int, object["alg"] as? String) {
        case (1, "none"):
            guard let token = object["refresh_token"] as? String, !token.isEmpty else {
                throw corrupt("no refresh_token")
            }
            return Stored(fence: fence, client: client, identity: identity(of: token), content: .plain(token))
        case (2, SecretSealer.algorithm):
            guard let id = object["id"] as? String, id.count == 40, id.allSatisfy(\.isHexDigit) else {
                throw corrupt("no valid id")
            }
            guard let text = SealedText(fields: object) else {
                throw corrupt("kid, iv, tag or ct missing or not valid")
            }
            return Stored(fence: fence, client: client, identity: id, content: .sealed(kid: text.kid, text.sealed))
        case (let version?, _) where version > 2:
            throw corrupt("envelope version \(version) is newer than this Baton reads: upgrade Baton")
        case (let version, let algorithm):
            throw corrupt(
                "unknown envelope (v \(version.map(String.init) ?? "missing"), alg \(algorithm.map { "'\($0.prefix(20))'" } ?? "missing"))"
            )
        }
    }
}
