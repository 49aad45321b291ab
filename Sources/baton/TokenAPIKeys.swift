import BatonConfig
import BatonSupport

/// The keys of the token API (`http.api_keys`), checked in constant time.
///
/// A presented key is compared by its HMAC-SHA256 under a key drawn at start, against every
/// configured key's, always all of them and without a branch on the bytes: the time taken says
/// nothing about how much of a key matched, nor which key matched. (The digests have a fixed
/// length, so the presented key's length does not show either.)
struct TokenAPIKeys: Sendable {
    /// An authenticated caller: the key's name (for logs) and scope.
    struct Caller: Sendable, Equatable {
        let name: String
        let scope: APIKey.Scope
    }

    private struct Entry: Sendable {
        let digest: [UInt8]
        let caller: Caller
    }

    private let hmacKey: [UInt8]
    private let entries: [Entry]

    /// Whether any key is configured (the token API is off otherwise).
    var isEmpty: Bool { entries.isEmpty }

    /// - Throws: ``BatonSupport/CryptoError`` when no random key can be drawn.
    init(_ keys: [APIKey]) throws {
        let hmacKey = try SecureRandom.bytes(32)
        self.hmacKey = hmacKey
        entries = keys.map {
            Entry(
                digest: Digest.hmacSHA256(key: hmacKey, message: Array($0.key.reveal().utf8)),
                caller: Caller(name: $0.name, scope: $0.scope))
        }
    }

    /// The caller whose key an `Authorization` header value carries (`Bearer <key>`, the scheme
    /// in any case), or `nil` for a missing, malformed or unknown key.
    func caller(authorization: String?) -> Caller? {
        let presented = Self.bearerKey(authorization) ?? []
        let digest = Digest.hmacSHA256(key: hmacKey, message: presented)
        // 1-based position of the matching entry, 0 for none; every entry is compared.
        var found = 0
        for (index, entry) in entries.enumerated() {
            var difference: UInt8 = 0
            for (left, right) in zip(digest, entry.digest) { difference |= left ^ right }
            // 1 when difference == 0, else 0, by arithmetic rather than a branch.
            let equal = Int((UInt32(difference) &- 1) >> 31)
            found |= equal &* (index + 1)
        }
        guard !presented.isEmpty, found > 0 else { return nil }
        return entries[found - 1].caller
    }

    /// The key of `Bearer <key>` (RFC 6750 §2.1: the scheme is case-insensitive).
    static func bearerKey(_ authorization: String?) -> [UInt8]? {
        guard let authorization else { return nil }
        let bytes = Array(authorization.utf8)
        let scheme = Array("bearer ".utf8)
        guard bytes.count > scheme.count,
            zip(bytes, scheme).allSatisfy({ ($0 | 0x20) == $1 })
        else { return nil }
        var key = bytes.dropFirst(scheme.count)
        while key.first == 0x20 { key = key.dropFirst() }
        while key.last == 0x20 { key = key.dropLast() }
        return key.isEmpty ? nil : Array(key)
    }
}
