/// A service's state as `baton status` shows it, and the `status` label values of
/// `baton_service_status` (every one is exported per service: 1 for the current, 0 for the others).
public enum ServiceStatus: String, Sendable, CaseIterable {
    /// A record whose access token is still valid.
    case ok
    /// A record whose access token has expired.
    case expired
    /// The last refresh failed; the record's token may still be valid.
    case refreshingFailed = "refreshing_failed"
    /// The provider rejected the refresh token: a human must re-authorise.
    case needsReauth = "needs_reauth"
    /// No record and no refresh token.
    case needsSeed = "needs_seed"
    /// A refresh token but no record yet.
    case seeded
    /// The stored refresh token was issued to another client than the configured one.
    case configMismatch = "config_mismatch"
    /// The stored refresh token is sealed under a key a replica (or this one) lacks.
    case unknownKey = "unknown_key"
    /// A rotated refresh token waits for Redis replicas' acknowledgements.
    case awaitingReplicas = "awaiting_replicas"
    /// The record key holds something that is not a record.
    case corruptRecord = "corrupt_record"
}
