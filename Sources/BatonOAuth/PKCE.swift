import BatonSupport
import Foundation

/// PKCE (RFC 7636) for the one-time authorization-code exchange used when seeding.
public enum PKCE {
    /// A fresh `code_verifier`: 32 random bytes, base64url (43 characters).
    public static func makeVerifier() -> String {
        var generator = SystemRandomNumberGenerator()
        let bytes = (0..<32).map { _ in UInt8.random(in: 0...255, using: &generator) }
        return base64URL(bytes)
    }

    /// The `S256` `code_challenge` of a verifier: base64url(SHA-256(verifier)).
    public static func challenge(for verifier: String) -> String {
        base64URL(Digest.sha256(Array(verifier.utf8)))
    }

    static func base64URL(_ bytes: [UInt8]) -> String {
        Data(bytes).base64EncodedString()
            .replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_").replacingOccurrences(
                of: "=", with: "")
    }
}
