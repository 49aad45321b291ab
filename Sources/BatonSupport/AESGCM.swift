internal import CCrypto

/// AES-256-GCM from OpenSSL's libcrypto (EVP): authenticated encryption for secrets at rest.
///
/// Each ``seal(_:key:additionalData:)`` draws a fresh random 96-bit IV, so one key can seal many
/// secrets. The additional data is authenticated but not encrypted: it binds a ciphertext to its
/// place (prefix, service, fence), so a ciphertext moved elsewhere fails to open.
public enum AESGCM {
    /// The key length: 32 bytes (AES-256).
    public static let keyLength = 32
    /// The IV length: 12 bytes (96 bits, GCM's native size).
    public static let ivLength = 12
    /// The tag length: 16 bytes (full-length tags only).
    public static let tagLength = 16

    /// A sealed secret: what must be stored to open it again (with the key and additional data).
    public struct Sealed: Equatable, Sendable {
        /// The 12-byte IV, fresh for every seal.
        public var iv: [UInt8]
        /// The ciphertext, as long as the plaintext.
        public var ciphertext: [UInt8]
        /// The 16-byte authentication tag.
        public var tag: [UInt8]

        /// A sealed secret from its stored parts.
        public init(iv: [UInt8], ciphertext: [UInt8], tag: [UInt8]) {
            self.iv = iv
            self.ciphertext = ciphertext
            self.tag = tag
        }
    }

    /// Encrypts and authenticates `plaintext` under `key` with a fresh random IV.
    /// - Parameters:
    ///   - plaintext: the secret.
    ///   - key: 32 bytes.
    ///   - additionalData: authenticated, not encrypted; the same bytes are needed to open. Default empty.
    /// - Throws: ``CryptoError`` for a key of the wrong length or a libcrypto failure.
    public static func seal(_ plaintext: [UInt8], key: [UInt8], additionalData: [UInt8] = []) throws(CryptoError)
        -> Sealed
    {
        try seal(plaintext, key: key, iv: SecureRandom.bytes(ivLength), additionalData: additionalData)
    }

    /// ``seal(_:key:additionalData:)`` with a given IV: only for known-answer tests. Reusing an IV
    /// with one key destroys GCM's security, so production code never chooses one.
    static func seal(_ plaintext: [UInt8], key: [UInt8], iv: [UInt8], additionalData: [UInt8]) throws(CryptoError)
        -> Sealed
    {
        try checkLengths(key: key, iv: iv, tag: nil)
        let context = try CipherContext()
        var ciphertext = [UInt8](repeating: 0, count: plaintext.count + 16)
        var tag = [UInt8](repeating: 0, count: tagLength)
        var written: Int32 = 0
        var finalWritten: Int32 = 0
        try context.check(EVP_EncryptInit_ex(context.pointer, EVP_aes_256_gcm(), nil, nil, nil), "EVP_EncryptInit_ex")
        try context.check(
            EVP_CIPHER_CTX_ctrl(context.pointer, EVP_CTRL_GCM_SET_IVLEN, Int32(ivLength), nil), "EVP_CIPHER_CTX_ctrl")
        try context.check(EVP_EncryptInit_ex(context.pointer, nil, nil, key, iv), "EVP_EncryptInit_ex")
        if !additionalData.isEmpty {
            var ignored: Int32 = 0
            try context.check(
                EVP_EncryptUpdate(context.pointer, nil, &ignored, additionalData, Int32(additionalData.count)),
                "EVP_EncryptUpdate")
        }
        if !plaintext.isEmpty {
            try context.check(
                EVP_EncryptUpdate(context.pointer, &ciphertext, &written, plaintext, Int32(plaintext.count)),
                "EVP_EncryptUpdate")
        }
        try ciphertext.withUnsafeMutableBufferPointer { buffer throws(CryptoError) in
            try context.check(
                EVP_EncryptFinal_ex(context.pointer, buffer.baseAddress! + Int(written), &finalWritten),
                "EVP_EncryptFinal_ex")
        }
        try context.check(
            EVP_CIPHER_CTX_ctrl(context.pointer, EVP_CTRL_GCM_GET_TAG, Int32(tagLength), &tag), "EVP_CIPHER_CTX_ctrl")
        return Sealed(iv: iv, ciphertext: Array(ciphertext.prefix(Int(written + finalWritten))), tag: tag)
    }

    /// Verifies and decrypts `sealed` under `key`.
    /// - Parameters:
    ///   - sealed: the IV, ciphertext and tag as ``seal(_:key:additionalData:)`` returned them.
    ///   - key: 32 bytes.
    ///   - additionalData: exactly the bytes given to seal.
    /// - Returns: the plaintext.
    /// - Throws: ``CryptoError/authenticationFailed`` for a wrong key or any changed byte (ciphertext,
    ///   tag, IV, additional data); a length error for a malformed key, IV or tag.
    public static func open(_ sealed: Sealed, key: [UInt8], additionalData: [UInt8] = []) throws(CryptoError)
        -> [UInt8]
    {
        try checkLengths(key: key, iv: sealed.iv, tag: sealed.tag)
        let context = try CipherContext()
        var plaintext = [UInt8](repeating: 0, count: sealed.ciphertext.count + 16)
        var tag = sealed.tag
        var written: Int32 = 0
        var finalWritten: Int32 = 0
        try context.check(EVP_DecryptInit_ex(context.pointer, EVP_aes_256_gcm(), nil, nil, nil), "EVP_DecryptInit_ex")
        try context.check(
            EVP_CIPHER_CTX_ctrl(context.pointer, EVP_CTRL_GCM_SET_IVLEN, Int32(ivLength), nil), "EVP_CIPHER_CTX_ctrl")
        try context.check(EVP_DecryptInit_ex(context.pointer, nil, nil, key, sealed.iv), "EVP_DecryptInit_ex")
        if !additionalData.isEmpty {
            var ignored: Int32 = 0
            try context.check(
                EVP_DecryptUpdate(context.pointer, nil, &ignored, additionalData, Int32(additionalData.count)),
                "EVP_DecryptUpdate")
        }
        if !sealed.ciphertext.isEmpty {
            try context.check(
                EVP_DecryptUpdate(
                    context.pointer, &plaintext, &written, sealed.ciphertext, Int32(sealed.ciphertext.count)),
                "EVP_DecryptUpdate")
        }
        try context.check(
            EVP_CIPHER_CTX_ctrl(context.pointer, EVP_CTRL_GCM_SET_TAG, Int32(tagLength), &tag), "EVP_CIPHER_CTX_ctrl")
        let verified = plaintext.withUnsafeMutableBufferPointer { buffer in
            EVP_DecryptFinal_ex(context.pointer, buffer.baseAddress! + Int(written), &finalWritten)
        }
        guard verified == 1 else {
            // Never hand back unauthenticated plaintext, even in part.
            for index in plaintext.indices { plaintext[index] = 0 }
            ERR_clear_error()
            throw .authenticationFailed
        }
        return Array(plaintext.prefix(Int(written + finalWritten)))
    }

    private static func checkLengths(key: [UInt8], iv: [UInt8], tag: [UInt8]?) throws(CryptoError) {
        guard key.count == keyLength else { throw .invalidKeyLength(key.count) }
        guard iv.count == ivLength else { throw .invalidIVLength(iv.count) }
        if let tag, tag.count != tagLength { throw .invalidTagLength(tag.count) }
    }
}

/// One `EVP_CIPHER_CTX`, owned by the seal or open call that made it and freed with it.
private final class CipherContext {
    let pointer: OpaquePointer

    init() throws(CryptoError) {
        guard let pointer = EVP_CIPHER_CTX_new() else { throw .libcrypto(operation: "EVP_CIPHER_CTX_new") }
        self.pointer = pointer
    }

    deinit { EVP_CIPHER_CTX_free(pointer) }

    /// Turns an EVP status (1 is success) into a ``CryptoError``, leaving libcrypto's error queue
    /// empty for the next caller on this thread (the TLS code reads it).
    func check(_ status: Int32, _ operation: String) throws(CryptoError) {
        guard status == 1 else {
            ERR_clear_error()
            throw .libcrypto(operation: operation)
        }
    }
}
