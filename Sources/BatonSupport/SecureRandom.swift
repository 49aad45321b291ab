internal import CCrypto

/// Cryptographically strong random bytes from OpenSSL's `RAND_bytes`: the one source for IVs and
/// keys.
public enum SecureRandom {
    /// `count` random bytes.
    /// - Throws: ``CryptoError/libcrypto(operation:)`` when the generator is not seeded or fails.
    public static func bytes(_ count: Int) throws(CryptoError) -> [UInt8] {
        var output = [UInt8](repeating: 0, count: count)
        guard count > 0 else { return output }
        let status = output.withUnsafeMutableBytes { buffer in
            RAND_bytes(buffer.baseAddress?.assumingMemoryBound(to: UInt8.self), Int32(count))
        }
        guard status == 1 else {
            ERR_clear_error()
            throw .libcrypto(operation: "RAND_bytes")
        }
        return output
    }
}
