import Foundation

/// The refresh token as stored in `prefix:{svc}:secret`: a small versioned JSON envelope, so that
/// encryption with a key id can be added later without a migration.
///
/// ```json
/// {"alg":"none","fence":12,"kid":null,"refresh_token":"...","v":1}
/// ```
/// - `v`: the envelope format (1).
/// - `alg`: `none` (plaintext; protect the key with Redis ACLs). A later `aes-256-gcm` would put
///   the ciphertext in `ct` and name its key in `kid`.
/// - `fence`: the fence of the write; a rotated token is never replaced by an older one.
public struct SecretEnvelope: Sendable, Hashable {
    /// The refresh token.
    public let refreshToken: String
    /// The fence of the write that stored it.
    public let fence: Int64

    /// Creates an envelope.
    public init(refreshToken: String, fence: Int64) {
        self.refreshToken = refreshToken
        self.fence = fence
    }

    /// The envelope's JSON.
    public func jsonBytes() throws -> [UInt8] {
        let object: [String: Any] = ["v": 1, "alg": "none", "kid": NSNull(), "fence": fence, "refresh_token": refreshToken]
        return Array(try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .withoutEscapingSlashes]))
    }

    /// Parses an envelope.
    /// - Throws: ``TokenStoreError/corruptSecret(service:reason:)`` without quoting the content.
    public static func decode(_ bytes: [UInt8], service: String) throws -> SecretEnvelope {
        guard let object = try? JSONSerialization.jsonObject(with: Data(bytes)) as? [String: Any] else {
            throw TokenStoreError.corruptSecret(service: service, reason: "not a JSON object")
        }
        guard (object["v"] as? Int) == 1 else {
            throw TokenStoreError.corruptSecret(service: service, reason: "unknown envelope version \(object["v"].map { "\($0)" } ?? "(missing)")")
        }
        guard (object["alg"] as? String) == "none" else {
            throw TokenStoreError.corruptSecret(service: service, reason: "envelope algorithm '\(object["alg"] ?? "")' is not supported by this version")
        }
        guard let token = object["refresh_token"] as? String, !token.isEmpty else {
            throw TokenStoreError.corruptSecret(service: service, reason: "no refresh_token")
        }
        return SecretEnvelope(refreshToken: token, fence: (object["fence"] as? NSNumber)?.int64Value ?? 0)
    }
}
