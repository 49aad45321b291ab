import BatonTokens
import Foundation

// @unchecked: `lock` guards `offset` and `syncedAt`.
/// An estimate of the Redis server's clock from the host's, so the scheduler can decide when to
/// wake without a round trip. The refresh protocol itself always asks Redis (`TIME`); this only
/// decides when to look. Re-synchronised every minute.
final class ServerClock: @unchecked Sendable {
    private let lock = NSLock()
    private var offset: Int64 = 0
    private var syncedAt: Int64 = .min

    /// Reads `TIME` and records the offset from the host clock (half the round trip corrected).
    func synchronize(with store: TokenStore) async throws {
        let before = Self.hostNow()
        let server = try await store.now()
        let after = Self.hostNow()
        lock.withLock {
            offset = server - (before + after) / 2
            syncedAt = after
        }
    }

    /// Whether the last synchronisation is more than a minute old.
    var isStale: Bool { lock.withLock { Self.hostNow() - syncedAt > 60_000 } }

    /// The estimated server time (ms since the epoch).
    var now: Int64 { lock.withLock { Self.hostNow() + offset } }

    static func hostNow() -> Int64 {
        Int64(Date().timeIntervalSince1970 * 1000)
    }
}

