import BatonSupport
import XCTest

/// HMAC-SHA256 against the known answers of RFC 4231 §4 (the signature of alert webhooks).
final class HMACTests: XCTestCase {
    private func bytes(_ hex: String) -> [UInt8] {
        var result: [UInt8] = []
        var index = hex.startIndex
        while index < hex.endIndex {
            let next = hex.index(index, offsetBy: 2)
            result.append(UInt8(hex[index..<next], radix: 16)!)
            index = next
        }
        return result
    }

    func testRFC4231TestCase1() {
        XCTAssertEqual(
            Digest.hmacSHA256Hex(key: [UInt8](repeating: 0x0b, count: 20), message: Array("Hi There".utf8)),
            "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7")
    }

    func testRFC4231TestCase2ShortKey() {
        XCTAssertEqual(
            Digest.hmacSHA256Hex(key: Array("Jefe".utf8), message: Array("what do ya want for nothing?".utf8)),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843")
    }

    func testRFC4231TestCase3CombinedLengthAboveBlockSize() {
        XCTAssertEqual(
            Digest.hmacSHA256(
                key: [UInt8](repeating: 0xaa, count: 20), message: [UInt8](repeating: 0xdd, count: 50)),
            bytes("773ea91e36800e46854db8ebd09181a72959098b3ef8c122d9635514ced565fe"))
    }

    func testRFC4231TestCase6KeyLongerThanABlock() {
        XCTAssertEqual(
            Digest.hmacSHA256Hex(
                key: [UInt8](repeating: 0xaa, count: 131),
                message: Array("Test Using Larger Than Block-Size Key - Hash Key First".utf8)),
            "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54")
    }

    func testEmptyMessageAndKey() {
        // openssl dgst -sha256 -hmac "" < /dev/null
        XCTAssertEqual(
            Digest.hmacSHA256Hex(key: [], message: []),
            "b613679a0814d9ec772f95d778c35fc5ff1697c493715653c6c712144292c5ad")
    }
}
