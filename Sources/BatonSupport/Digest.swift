internal import CCrypto

/// Message digests from OpenSSL's libcrypto: the one place Baton calls `EVP_Digest` (script SHA-1s,
/// PKCE's SHA-256) and `EVP_Q_mac` (the HMAC-SHA256 signatures of alert webhooks).
public enum Digest {
    /// The SHA-1 of `bytes` as 40 lower-case hex digits (the form Redis uses for script hashes).
    public static func sha1Hex(_ bytes: [UInt8]) -> String {
        hex(digest(bytes, EVP_sha1(), length: 20))
    }

    /// The SHA-256 of `bytes` (32 bytes).
    public static func sha256(_ bytes: [UInt8]) -> [UInt8] {
        digest(bytes, EVP_sha256(), length: 32)
    }

    /// The HMAC-SHA256 (RFC 2104, FIPS 198-1) of `message` under `key` (32 bytes). Any key length
    /// works: a key longer than SHA-256's 64-byte block is hashed first, as the RFC says.
    public static func hmacSHA256(key: [UInt8], message: [UInt8]) -> [UInt8] {
        var output = [UInt8](repeating: 0, count: 32)
        var written = 0
        let result = key.withUnsafeBytes { keyBytes in
            message.withUnsafeBytes { messageBytes in
                // A zero-length buffer may have no base address; libcrypto wants a pointer even then.
                EVP_Q_mac(
                    nil, "HMAC", nil, "SHA256", nil, keyBytes.baseAddress ?? UnsafeRawPointer(bitPattern: 1),
                    keyBytes.count,
                    messageBytes.baseAddress?.assumingMemoryBound(to: UInt8.self)
                        ?? UnsafePointer(bitPattern: 1), messageBytes.count, &output, output.count, &written)
            }
        }
        // Fails only on allocation failure or a libcrypto without HMAC/SHA-256: not recoverable.
        precondition(result != nil && written == 32, "libcrypto HMAC-SHA256 failed")
        return output
    }

    /// The HMAC-SHA256 of `message` under `key` as 64 lower-case hex digits.
    public static func hmacSHA256Hex(key: [UInt8], message: [UInt8]) -> String {
        hex(hmacSHA256(key: key, message: message))
    }

    private static func digest(_ bytes: [UInt8], _ algorithm: OpaquePointer?, length: Int) -> [UInt8] {
        var output = [UInt8](repeating: 0, count: Int(EVP_MAX_MD_SIZE))
        var written: UInt32 = 0
        let status = bytes.withUnsafeBytes { input in
            EVP_Digest(input.baseAddress, input.count, &output, &written, algorithm, nil)
        }
        // EVP_Digest only fails on allocation failure or an unavailable algorithm; neither is
        // recoverable and both are programming or platform errors.
        precondition(status == 1 && Int(written) == length, "libcrypto digest failed")
        return Array(output.prefix(length))
    }

    /// `bytes` as lower-case hex digits (shared with ``EncryptionKey/defaultKid(now:)``).
    static func hex(_ bytes: [UInt8]) -> String {
        let digits = Array("0123456789abcdef".utf8)
        var text: [UInt8] = []
        text.reserveCapacity(bytes.count * 2)
        for byte in bytes {
            text.append(digits[Int(byte >> 4)])
            text.append(digits[Int(byte & 0x0f)])
        }
        return String(decoding: text, as: UTF8.self)
    }
}
