import Foundation

/// Owner tokens: `host:pid:` plus 128 random bits in hex, unique per acquisition. The readable
/// part lets operators see who holds a lock with `redis-cli GET`; the random part makes it
/// impossible for anyone else to release or extend it by accident.
public enum LockOwner {
    static func generate() -> String {
        var generator = SystemRandomNumberGenerator()
        return label + ":" + hex(generator.next()) + hex(generator.next())
    }

    /// 16 lower-case hex digits, zero-padded (String(format:) is slow on the acquire path).
    private static func hex(_ value: UInt64) -> String {
        let digits = String(value, radix: 16)
        return String(repeating: "0", count: 16 - digits.count) + digits
    }

    /// `host:pid` of this process.
    static let label = "\(ProcessInfo.processInfo.hostName):\(ProcessInfo.processInfo.processIdentifier)"

    /// The readable `host:pid` part of an owner token.
    public static func label(of owner: String) -> String {
        guard let lastColon = owner.lastIndex(of: ":") else { return owner }
        return String(owner[..<lastColon])
    }
}
