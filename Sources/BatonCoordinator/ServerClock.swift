import BatonTokens
import Foundation

/// An estimate of the Redis server's clock from the host's, so the scheduler can decide when to
/// wake without a round trip. The refresh protocol itself always asks Redis (`TIME`); this only
/// decides when to look. A value owned by the coordinator actor; re-measured every minute.
struct ServerClock: Sendable {
    private var offset: Int64 = 0
    private var measuredAt: Int64 = .min

    /// Reads `TIME` and records the offset from the host clock (half the round trip corrected).
    static func measure(with store: TokenStore) async throws -> ServerClock {
        let before = hostNow()
        let server = try await store.now()
        let after = hostNow()
        return ServerClock(offset: server - (before + after) / 2, measuredAt: after)
    }

    /// Whether the last measurement is more than a minute old.
    var isStale: Bool { Self.hostNow() - measuredAt > 60_000 }

    /// The estimated server time (ms since the epoch).
    var now: Int64 { Self.hostNow() + offset }

    static func hostNow() -> Int64 {
        Int64(Date().timeIntervalSince1970 * 1000)
    }
}
