import BatonRedis
import BatonSupport
import Foundation

/// The refresh token as stored in `prefix:{svc}:secret`: a small versioned JSON envelope, so that
/// encryption with a key id can be added later without a migration.
///
/// ```json
/// {"alg":"none","client":"3f2a9c0d41b7e8aa","fence":12,"kid":null,"refresh_token":"...","v":1}
/// ```
/// - `v`: the envelope format (1).
/// - `alg`: `none` (plaintext; protect the key with Redis ACLs). A later `aes-256-gcm` would put
///   the ciphertext in `ct` and name its key in `kid`.
/// - `fence`: the fence of the write; a rotated token is never replaced by an older one.
/// - `client`: the fingerprint of the client the token was issued to (``clientFingerprint(tokenURL:clientID:grant:)``),
///   so that a replica configured for another client refuses to use it; absent in envelopes
///   written before it existed (then nothing is checked).
public struct SecretEnvelope: Sendable, Hashable {
    /// The refresh token.
    public let refreshToken: String
    /// The fence of the write that stored it.
    public let fence: Int64
    /// The fingerprint of the client it was issued to, when known.
    public let client: String?

    /// Creates an envelope.
    public init(refreshToken: String, fence: Int64, client: String? = nil) {
        self.refreshToken = refreshToken
        self.fence = fence
        self.client = client
    }

    /// What identifies this refresh token in a write that was based on it: the SHA-1 (hex) of
    /// the token, as the scripts compute it (`redis.sha1hex`). Fences alone cannot say it: the
    /// counter restarts when Redis loses its data.
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

    /// The envelope's JSON.
    public func jsonBytes() throws -> [UInt8] {
        var object: [String: Any] = [
            "v": 1, "alg": "none", "kid": NSNull(), "fence": fence, "refresh_token": refreshToken,
        ]
        if let client { object["client"] = client }
        return Array(
            try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .withoutEscapingSlashes]))
    }

    /// Parses an envelope.
    /// - Throws: ``TokenStoreError/corruptSecret(service:reason:)`` without quoting the content.
    public static func decode(_ bytes: [UInt8], service: String) throws -> SecretEnvelope {
        guard let object = try? JSONSerialization.jsonObject(with: Data(bytes)) as? [String: Any] else {
            throw TokenStoreError.corruptSecret(service: service, reason: "not a JSON object")
        }
        guard (object["v"] as? Int) == 1 else {
            throw TokenStoreError.corruptSecret(
                service: service, reason: "unknown envelope version \(object["v"].map { "\($0)" } ?? "(missing)")")
        }
        guard (object["alg"] as? String) == "none" else {
            throw TokenStoreError.corruptSecret(
                service: service, reason: "envelope algorithm '\(object["alg"] ?? "")' is not supported by this version"
            )
        }
        guard let token = object["refresh_token"] as? String, !token.isEmpty else {
            throw TokenStoreError.corruptSecret(service: service, reason: "no refresh_token")
        }
        return SecretEnvelope(
            refreshToken: token, fence: (object["fence"] as? NSNumber)?.int64Value ?? 0,
            client: object["client"] as? String)
    }
}
