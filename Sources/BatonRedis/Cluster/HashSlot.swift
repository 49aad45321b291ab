/// Redis Cluster's hash slots: which of the 16384 slots a key belongs to.
///
/// The slot is CRC-16/XMODEM of the key modulo 16384, or of its hash tag when it has one: the
/// bytes between the first `{` and the first `}` after it, when there is at least one byte
/// between them ([cluster specification](https://redis.io/docs/reference/cluster-spec/#hash-tags)).
/// Baton's keys carry tags (`oauth:{svc}:token`), so one service's keys share a slot.
public enum HashSlot {
    /// How many slots a cluster has.
    public static let count = 16384

    /// The slot of `key` (its UTF-8 bytes), as `CLUSTER KEYSLOT` computes it.
    public static func of(_ key: String) -> Int {
        of(bytes: Array(key.utf8))
    }

    /// The slot of a key given as raw bytes.
    public static func of(bytes key: [UInt8]) -> Int {
        var hashed = key[...]
        if let open = key.firstIndex(of: UInt8(ascii: "{")),
            let close = key[(open + 1)...].firstIndex(of: UInt8(ascii: "}")), close > open + 1
        {
            hashed = key[(open + 1)..<close]
        }
        return Int(crc16(hashed) & UInt16(count - 1))
    }

    /// CRC-16/XMODEM (polynomial 0x1021, initial value 0, not reflected), as in Redis's `crc16.c`.
    static func crc16(_ bytes: ArraySlice<UInt8>) -> UInt16 {
        var crc: UInt16 = 0
        for byte in bytes {
            crc = (crc << 8) ^ table[Int(UInt8(truncatingIfNeeded: crc >> 8) ^ byte)]
        }
        return crc
    }

    /// The byte-wise lookup table of the polynomial, built once.
    private static let table: [UInt16] = (0..<256).map { index in
        var crc = UInt16(index) << 8
        for _ in 0..<8 { crc = crc & 0x8000 != 0 ? (crc << 1) ^ 0x1021 : crc << 1 }
        return crc
    }
}
