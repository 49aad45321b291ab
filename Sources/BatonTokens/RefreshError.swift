import BatonRedis

/// Why the refresh protocol could not return a usable token, with what to do next.
public enum RefreshError: Error, Sendable, CustomStringConvertible {
    /// The service has no refresh token stored (and its grant needs one).
    case needsSeed(service: String)
    /// The credential needs re-authorisation (`invalid_grant`, now or earlier).
    case needsReauthorization(service: String, description: String)
    /// The provider failed; the stored record (if any) was marked `refreshing_failed`.
    case provider(service: String, failure: ProviderFailure)
    /// The lock could not be had in time and the stored token is not valid: nobody called the
    /// provider (Baton never refreshes without the lock).
    case busy(service: String, waited: Duration)
    /// This process's lease ran out (a pause, a slow Redis) or had too little left for a whole
    /// provider call: the provider was not called.
    case leaseLost(service: String)
    /// The provider rotated the refresh token, but a newer one was stored meanwhile (an
    /// operator's seed, or another holder whose call the provider also answered): ours was not
    /// written, and nothing else was. Not a success: read the stored record again.
    case rotatedTokenSuperseded(service: String)
    /// The stored refresh token was issued to another client than this configuration's
    /// (`token_url`, `client_id` or `grant` differ): it was left alone, unused.
    case configMismatch(service: String)
    /// The refresh token was replaced (a seed) while the call that failed with it ran: the
    /// failure says nothing about the new one, so nothing was recorded. Try again.
    case secretReplaced(service: String)
    /// The rotated refresh token is stored on the Redis master, but the lease ran out before
    /// `persist_replicas` replicas acknowledged it. It stays in the local spool, which the next
    /// replay stores again (and waits for replicas again). Not a success.
    case replicasNotAcknowledged(service: String, acknowledged: Int, required: Int)
    /// The stored refresh token cannot be read here: sealed under a key this keyring lacks
    /// (``TokenStoreError/unknownKey(service:kid:)``), not opening with the key of its kid, or
    /// damaged. It was left alone: the provider was not called and nothing was written.
    case unreadableSecret(TokenStoreError)

    public var description: String {
        switch self {
        case .needsSeed(let service):
            return
                "no refresh token stored for '\(service)': seed one with `baton seed \(service) --refresh-token-file PATH`"
        case .needsReauthorization(let service, let description):
            return
                "'\(service)' needs re-authorisation (\(description)): re-authorise it with the provider, then run `baton seed \(service) --refresh-token-file PATH`"
        case .provider(let service, let failure):
            return "refreshing '\(service)' failed: \(failure)"
        case .busy(let service, let waited):
            return
                "another process is refreshing '\(service)' and did not finish within \(waited.shortDescription); the stored token is not valid: try again shortly"
        case .leaseLost(let service):
            return
                "the lease on '\(service)''s lock ran out or had too little time left for a provider call (a pause, or a slow Redis); the provider was not called: try again"
        case .secretReplaced(let service):
            return
                "the refresh token of '\(service)' was replaced while a refresh with the old one failed; the failure was not recorded: try again (the new token will be used)"
        case .configMismatch(let service):
            return
                "the refresh token stored for '\(service)' was issued to another client (token_url, client_id or grant differ from this configuration); it was left alone: make every replica's configuration of '\(service)' the same, or re-seed it for this one"
        case .replicasNotAcknowledged(let service, let acknowledged, let required):
            return
                "the rotated refresh token of '\(service)' is on the Redis master, but only \(acknowledged) of \(required) replicas acknowledged it before the lock's lease ran out; it stays in the spool (state_dir) and is stored again at the next replay: check replication (INFO replication on the master), or lower persist_replicas"
        case .unreadableSecret(let problem):
            return "\(problem)"
        case .rotatedTokenSuperseded(let service):
            return
                "the provider rotated '\(service)''s refresh token, but a newer one was stored meanwhile (a seed, or another holder); the newer one was kept: try again"
        }
    }
}
