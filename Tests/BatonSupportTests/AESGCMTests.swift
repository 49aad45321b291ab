import Foundation
import XCTest

@testable import BatonSupport

/// AES-256-GCM through libcrypto: known answers, round trips, and every change that must make
/// `open` fail.
final class AESGCMTests: XCTestCase {
    private func bytes(_ hex: String) -> [UInt8] {
        let digits = Array(hex.utf8)
        return stride(from: 0, to: digits.count, by: 2).map {
            UInt8(String(decoding: digits[$0..<$0 + 2], as: UTF8.self), radix: 16)!
        }
    }

    // MARK: - Known answers (McGrew & Viega, "The Galois/Counter Mode of Operation", AES-256, 96-bit IV)

    private struct Vector {
        let name: String
        let key: String
        let iv: String
        let plaintext: String
        let additionalData: String
        let ciphertext: String
        let tag: String
    }

    private static let gcmKey = "feffe9928665731c6d6a8f9467308308feffe9928665731c6d6a8f9467308308"
    private static let gcmPlaintext =
        "d9313225f88406e5a55909c5aff5269a86a7a9531534f7da2e4c303d8a318a721c3c0c95956809532fcf0e2449a6b525"
        + "b16aedf5aa0de657ba637b391aafd255"
    private static let gcmCiphertext =
        "522dc1f099567d07f47f37a32a84427d643a8cdcbfe5c0c97598a2bd2555d1aa8cb08e48590dbb3da7b08b1056828838"
        + "c5f61e6393ba7a0abcc9f662898015ad"

    private static let vectors = [
        Vector(
            name: "test case 13", key: String(repeating: "00", count: 32), iv: String(repeating: "00", count: 12),
            plaintext: "", additionalData: "", ciphertext: "", tag: "530f8afbc74536b9a963b4f1c4cb738b"),
        Vector(
            name: "test case 14", key: String(repeating: "00", count: 32), iv: String(repeating: "00", count: 12),
            plaintext: String(repeating: "00", count: 16), additionalData: "",
            ciphertext: "cea7403d4d606b6e074ec5d3baf39d18", tag: "d0d1c8a799996bf0265b98b5d48ab919"),
        Vector(
            name: "test case 15", key: gcmKey, iv: "cafebabefacedbaddecaf888", plaintext: gcmPlaintext,
            additionalData: "", ciphertext: gcmCiphertext, tag: "b094dac5d93471bdec1a502270e3cc6c"),
        Vector(
            name: "test case 16", key: gcmKey, iv: "cafebabefacedbaddecaf888",
            plaintext: String(gcmPlaintext.dropLast(8)), additionalData: "feedfacedeadbeeffeedfacedeadbeefabaddad2",
            ciphertext: String(gcmCiphertext.dropLast(8)), tag: "76fc6ece0f4e1768cddf8853bb2d551b"),
    ]

    func testKnownAnswers() throws {
        for vector in Self.vectors {
            let sealed = try AESGCM.seal(
                bytes(vector.plaintext), key: bytes(vector.key), iv: bytes(vector.iv),
                additionalData: bytes(vector.additionalData))
            XCTAssertEqual(sealed.ciphertext, bytes(vector.ciphertext), vector.name)
            XCTAssertEqual(sealed.tag, bytes(vector.tag), vector.name)
            XCTAssertEqual(sealed.iv, bytes(vector.iv), vector.name)
            let opened = try AESGCM.open(
                AESGCM.Sealed(iv: bytes(vector.iv), ciphertext: bytes(vector.ciphertext), tag: bytes(vector.tag)),
                key: bytes(vector.key), additionalData: bytes(vector.additionalData))
            XCTAssertEqual(opened, bytes(vector.plaintext), vector.name)
        }
    }

    // MARK: - Round trips

    private let key = Array(UInt8(0)..<32)
    private let additionalData = Array("oauth|my-api|fence=7".utf8)

    func testRoundTripsWithAFreshIVEachTime() throws {
        for length in [0, 1, 15, 16, 17, 100, 4096] {
            let plaintext = try SecureRandom.bytes(length)
            let first = try AESGCM.seal(plaintext, key: key, additionalData: additionalData)
            let second = try AESGCM.seal(plaintext, key: key, additionalData: additionalData)
            XCTAssertEqual(first.iv.count, AESGCM.ivLength)
            XCTAssertEqual(first.tag.count, AESGCM.tagLength)
            XCTAssertEqual(first.ciphertext.count, length)
            XCTAssertNotEqual(first.iv, second.iv, "every seal draws a new IV")
            if length > 0 { XCTAssertNotEqual(first.ciphertext, plaintext) }
            XCTAssertEqual(try AESGCM.open(first, key: key, additionalData: additionalData), plaintext)
            XCTAssertEqual(try AESGCM.open(second, key: key, additionalData: additionalData), plaintext)
        }
    }

    // MARK: - Everything that must fail

    private func assertOpenFails(
        _ sealed: AESGCM.Sealed, key: [UInt8], additionalData: [UInt8], _ expected: CryptoError, _ message: String,
        line: UInt = #line
    ) {
        XCTAssertThrowsError(try AESGCM.open(sealed, key: key, additionalData: additionalData), message, line: line) {
            XCTAssertEqual($0 as? CryptoError, expected, message, line: line)
        }
    }

    func testEveryChangedByteFailsToOpen() throws {
        let sealed = try AESGCM.seal(Array("a refresh token".utf8), key: key, additionalData: additionalData)
        for index in sealed.ciphertext.indices {
            var tampered = sealed
            tampered.ciphertext[index] ^= 0x01
            assertOpenFails(
                tampered, key: key, additionalData: additionalData, .authenticationFailed, "ciphertext \(index)")
        }
        for index in sealed.tag.indices {
            var tampered = sealed
            tampered.tag[index] ^= 0x80
            assertOpenFails(tampered, key: key, additionalData: additionalData, .authenticationFailed, "tag \(index)")
        }
        for index in sealed.iv.indices {
            var tampered = sealed
            tampered.iv[index] ^= 0x01
            assertOpenFails(tampered, key: key, additionalData: additionalData, .authenticationFailed, "iv \(index)")
        }
        var truncated = sealed
        truncated.ciphertext.removeLast()
        assertOpenFails(truncated, key: key, additionalData: additionalData, .authenticationFailed, "ciphertext cut")
        var extended = sealed
        extended.ciphertext.append(0)
        assertOpenFails(extended, key: key, additionalData: additionalData, .authenticationFailed, "ciphertext grown")
        // And the untouched original still opens: the failures above are the changes, not the setup.
        XCTAssertEqual(try AESGCM.open(sealed, key: key, additionalData: additionalData), Array("a refresh token".utf8))
    }

    func testAWrongKeyOrOtherAdditionalDataFailsToOpen() throws {
        let sealed = try AESGCM.seal(Array("a refresh token".utf8), key: key, additionalData: additionalData)
        var otherKey = key
        otherKey[31] ^= 0x01
        assertOpenFails(sealed, key: otherKey, additionalData: additionalData, .authenticationFailed, "other key")
        for other in ["oauth|other-api|fence=7", "oauth|my-api|fence=8", "", "oauth|my-api|fence=7 "] {
            assertOpenFails(
                sealed, key: key, additionalData: Array(other.utf8), .authenticationFailed, "AAD '\(other)'")
        }
        let unbound = try AESGCM.seal(Array("x".utf8), key: key)
        assertOpenFails(unbound, key: key, additionalData: additionalData, .authenticationFailed, "AAD added")
    }

    func testMalformedLengthsAreRefusedWithTheirLength() throws {
        let sealed = try AESGCM.seal([1, 2, 3], key: key)
        XCTAssertThrowsError(try AESGCM.seal([1], key: Array(key.prefix(16)))) {
            XCTAssertEqual($0 as? CryptoError, .invalidKeyLength(16))
        }
        assertOpenFails(sealed, key: key + [0], additionalData: [], .invalidKeyLength(33), "long key")
        var shortTag = sealed
        shortTag.tag.removeLast(4)
        assertOpenFails(shortTag, key: key, additionalData: [], .invalidTagLength(12), "truncated tag")
        var longIV = sealed
        longIV.iv.append(0)
        assertOpenFails(longIV, key: key, additionalData: [], .invalidIVLength(13), "16-byte IV")
    }

    func testErrorsNeverShowKeysOrPlaintexts() throws {
        let secret = "refresh-token-7f3a9c"
        let sealed = try AESGCM.seal(Array(secret.utf8), key: key)
        var otherKey = key
        otherKey[0] ^= 0xff
        do {
            _ = try AESGCM.open(sealed, key: otherKey)
            XCTFail("a wrong key opened the secret")
        } catch {
            let text = "\(error) \(String(reflecting: error))"
            XCTAssertTrue(text.contains("decryption failed"), text)
            for forbidden in [secret, Data(key).base64EncodedString(), Data(otherKey).base64EncodedString()] {
                XCTAssertFalse(text.contains(forbidden), "error text shows secret material: \(text)")
            }
            XCTAssertFalse(text.contains(Digest.hex(key)), text)
        }
    }
}
