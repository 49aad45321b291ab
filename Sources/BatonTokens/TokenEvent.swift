import BatonRedis

/// One entry of the audit stream `prefix:{svc}:events` (read it with `XREVRANGE key + - COUNT 20`).
/// Never contains a token or a secret.
public struct TokenEvent: Sendable, Hashable {
    /// What happened.
    public enum Kind: String, Sendable, Hashable, CaseIterable {
        /// A refresh succeeded and its record was written.
        case refreshed
        /// A refresh failed; the access token is still served until it expires.
        case failed
        /// A failed refresh will be retried after a backoff.
        case retried
        /// The provider answered `invalid_grant`: a human must re-authorise.
        case needsReauth = "needs_reauth"
        /// The service has no record and no refresh token.
        case needsSeed = "needs_seed"
        /// A worker asked for a forced refresh.
        case forced
        /// An operator stored a refresh token.
        case seeded
        /// A stale writer's record was rejected by the fence.
        case staleWriteRejected = "stale_write_rejected"
        /// A rotated refresh token left in a host's spool by a process that stopped before Redis
        /// had it was stored (or found superseded) at the next start.
        case spoolReplayed = "spool_replayed"
        /// A refresh token found in an otherwise unusable provider answer was stored.
        case recovered
        /// The primary client secret got `invalid_client` and the fallback one worked: swap them in the
        /// configuration (README "Rotating a client secret").
        case clientSecretFallbackUsed = "client_secret_fallback_used"
        /// `baton rekey` sealed the stored refresh token again under another key (`kid`,
        /// `previous_kid`); the token itself did not change.
        case rekeyed
        /// A replica met a refresh token sealed under a key it lacks (`kid`) and left the
        /// service alone.
        case unknownKey = "unknown_key"
    }

    /// The stream entry id (`1764000000000-0`).
    public let id: String
    /// The fields of the entry.
    public let fields: [String: String]

    /// The event kind, when it is one this version knows.
    public var kind: Kind? { fields["event"].flatMap(Kind.init(rawValue:)) }

    /// An entry of `XRANGE`/`XREVRANGE` (`[id, [field, value, ...]]`), or `nil` for another shape.
    public init?(streamEntry: RESPValue) {
        guard let parts = streamEntry.array, parts.count == 2, let id = parts[0].string, let flat = parts[1].array
        else { return nil }
        var fields: [String: String] = [:]
        for index in stride(from: 0, to: flat.count - 1, by: 2) {
            if let name = flat[index].string { fields[name] = flat[index + 1].string ?? "" }
        }
        self.id = id
        self.fields = fields
    }
}
