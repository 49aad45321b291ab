import BatonRedis
import BatonSupport
import Foundation

/// The worker side: get a usable access token from Redis, waiting for the coordinator when the
/// stored one is expired, missing, or (after a 401) not newer than the one that failed. Never calls
/// the provider itself: only the coordinator refreshes.
///
/// ```swift
/// let tokens = TokenClient(client: redis)
/// var record = try await tokens.accessToken(for: "my-api")
/// // ... the API answers 401 with record.accessToken:
/// record = try await tokens.accessToken(for: "my-api", newerThan: record.version)
/// ```
public struct TokenClient: Sendable {
    /// Why no token could be handed out.
    public enum Failure: Error, Sendable, CustomStringConvertible {
        /// No usable record appeared within the wait.
        case timedOut(service: String, waited: Duration, newest: TokenRecord?)
        /// The credential needs re-authorisation; waiting will not help.
        case needsReauthorization(service: String, lastError: TokenRecord.LastError?)

        public var description: String {
            switch self {
            case .timedOut(let service, let waited, let newest):
                let state: String
                if let newest {
                    state =
                        "the newest record is version \(newest.version), status \(newest.status.rawValue)\(newest.lastError.map { ", last error \($0.code): \($0.description)" } ?? "")"
                } else {
                    state = "there is no record at all (is the service seeded and `baton serve` running?)"
                }
                return "no usable token for '\(service)' within \(waited.shortDescription): \(state)"
            case .needsReauthorization(let service, let lastError):
                return
                    "'\(service)' needs re-authorisation (\(lastError.map { "\($0.code): \($0.description)" } ?? "invalid_grant")): re-authorise it with the provider, then run `baton seed \(service) --refresh-token-file PATH`"
            }
        }
    }

    /// The store records are read from.
    public let store: TokenStore

    /// Creates a client reading records under `prefix`.
    public init(client: RedisClient, prefix: String = BatonDefaults.tokenPrefix) {
        // A worker reads records only, never refresh tokens: it needs no keys.
        self.store = TokenStore(client: client, prefix: prefix, encryption: .none)
    }

    /// A token that has not expired. Returns at once when the stored one is valid; otherwise
    /// waits (up to `wait`) for the coordinator to write one.
    public func accessToken(for service: String, wait: Duration = .seconds(10)) async throws -> TokenRecord {
        try await waitFor(service, wait: wait, request: nil) { record, now in !record.isExpired(at: now) }
    }

    /// A token newer than `version` (the one that got a 401): a *successful* record above it. A
    /// newer failure record (`refreshing_failed`) still holds the token that got the 401, so it is
    /// waited past. Returns at once when the stored record already qualifies; otherwise asks the
    /// coordinator for a forced refresh (`LPUSH prefix:refresh-requests {"service":...,"version":N}`)
    /// and waits for it.
    public func accessToken(for service: String, newerThan version: Int64, wait: Duration = .seconds(10)) async throws
        -> TokenRecord
    {
        try await waitFor(service, wait: wait, request: version) { record, now in
            record.version > version && record.status == .ok && !record.isExpired(at: now)
        }
    }

    private func waitFor(
        _ service: String, wait: Duration, request version: Int64?,
        until isUsable: @escaping (TokenRecord, Int64) -> Bool
    ) async throws -> TokenRecord {
        let keys = try store.keys(service)
        let (stored, now) = try await store.recordAndNow(service)
        if let record = stored {
            if isUsable(record, now) { return record }
            if record.status == .needsReauth {
                throw Failure.needsReauthorization(service: service, lastError: record.lastError)
            }
        }
        guard wait > .zero else {
            throw Failure.timedOut(service: service, waited: .zero, newest: try await store.record(service))
        }

        // Listen before asking, so the answer cannot slip past.
        let listener = try await ChangeWatch.start(
            endpoint: store.client.endpoint, options: store.client.options.connection, channel: keys.changedChannel)
        defer { listener.stop() }
        if let version {
            let request = RefreshRequestEntry.encode(service: service, version: version)
            try await store.client.send("LPUSH", TokenKeys.refreshRequests(prefix: store.prefix), request)
        }
        let clock = ContinuousClock()
        let deadline = clock.now + wait
        var newest: TokenRecord?
        while true {
            let (stored, now) = try await store.recordAndNow(service)
            newest = stored
            if let record = newest {
                if isUsable(record, now) { return record }
                if record.status == .needsReauth {
                    throw Failure.needsReauthorization(service: service, lastError: record.lastError)
                }
            }
            let remaining = deadline - clock.now
            if remaining <= .zero { throw Failure.timedOut(service: service, waited: wait, newest: newest) }
            // Woken by the change notification; re-read at least every second in case one is lost.
            await listener.wakeup.wait(upTo: min(remaining, .seconds(1)))
        }
    }
}
