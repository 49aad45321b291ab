extension RedisClusterProcess {
    /// How many hash slots a cluster has.
    public static let slotCount = 16384

    /// The hash slot of `key` (its UTF-8 bytes), as `CLUSTER KEYSLOT` computes it; see
    /// ``keySlot(bytes:)``.
    public static func keySlot(_ key: String) -> Int {
        keySlot(bytes: key.utf8)
    }

    /// The hash slot of a key: CRC16 (XMODEM) of the key modulo 16384, or of its hash tag when it
    /// has one (the bytes between the first `{` and the first `}` after it, when not empty), as
    /// the [cluster specification](https://redis.io/docs/reference/cluster-spec/#hash-tags) says.
    public static func keySlot(bytes key: some Collection<UInt8>) -> Int {
        let bytes = Array(key)
        var hashed = bytes[...]
        if let open = bytes.firstIndex(of: UInt8(ascii: "{")),
            let close = bytes[(open + 1)...].firstIndex(of: UInt8(ascii: "}")), close > open + 1
        {
            hashed = bytes[(open + 1)..<close]
        }
        return Int(crc16(hashed)) % slotCount
    }

    /// CRC-16/XMODEM: polynomial 0x1021, initial value 0, no reflection, as in Redis's crc16.c.
    static func crc16(_ bytes: some Collection<UInt8>) -> UInt16 {
        var crc: UInt16 = 0
        for byte in bytes {
            crc ^= UInt16(byte) << 8
            for _ in 0..<8 {
                crc = crc & 0x8000 != 0 ? (crc << 1) ^ 0x1021 : crc << 1
            }
        }
        return crc
    }
}
