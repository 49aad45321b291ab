import BatonTokens

/// Why a service is left alone until something changes (a seed, a configuration fix): the
/// coordinator re-reads it then, or every ``CoordinatorOptions/blockedRecheck``.
enum BlockedReason: String, Sendable {
    /// No refresh token stored.
    case needsSeed = "needs_seed"
    /// The provider rejected the refresh token.
    case needsReauth = "needs_reauth"
    /// The stored token was issued to another client than this replica's configuration.
    case configMismatch = "config_mismatch"
    /// The stored token is sealed under a key this replica's keyring lacks.
    case unknownKey = "unknown_key"
    /// The stored token does not open with its key here, or its envelope is damaged.
    case unreadableSecret = "unreadable_secret"

    /// What the operator should do, for the log line.
    func advice(service: String) -> String {
        switch self {
        case .needsSeed:
            return "no refresh token stored: run `baton seed \(service) --refresh-token-file PATH`"
        case .needsReauth:
            return "the provider rejected the refresh token: re-authorise, then `baton seed \(service)`"
        case .configMismatch:
            return
                "the stored refresh token was issued to another client (token_url, client_id or grant differ from this replica's configuration); left alone: align the configurations or re-seed"
        case .unknownKey:
            return
                "the stored refresh token is encrypted with a key this replica's keyring lacks; left alone: give every replica the same keyring (BATON_ENCRYPTION_KEYS or encryption.keys_file) and restart it"
        case .unreadableSecret:
            return
                "the stored refresh token cannot be read here (its key does not open it, or the envelope is damaged); left alone: check the keyring, or re-seed"
        }
    }
}

/// Why a refresh attempt is retried after a backoff; ``errorClass`` goes into logs and events.
enum RetryReason: Sendable, Equatable {
    /// Another holder kept the lock past `lock_wait`.
    case busy
    /// The lease ran out before a provider call.
    case leaseLost
    /// A rotated token lost to a newer stored one.
    case rotatedTokenSuperseded
    /// The refresh token was replaced while a call with it failed.
    case secretReplaced
    /// A rotated token stayed short of `persist_replicas` acknowledgements until the lease ran
    /// out (it waits in the spool).
    case replicasNotAcknowledged
    /// The provider failed (its error code).
    case provider(code: String)
    /// Redis failed (the error, described without secrets).
    case redis(String)

    /// The `error_class` of logs and `retried` events.
    var errorClass: String {
        switch self {
        case .busy: return "busy"
        case .leaseLost: return "lease_lost"
        case .rotatedTokenSuperseded: return "rotated_token_superseded"
        case .secretReplaced: return "secret_replaced"
        case .replicasNotAcknowledged: return "replicas_not_acknowledged"
        case .provider(let code): return code
        case .redis(let description): return "redis: \(description)"
        }
    }
}

/// How one refresh attempt ended.
enum RefreshOutcome: Sendable {
    /// A record that satisfies the attempt; `observed` is the version stored when it began
    /// (it resolves requests' targets).
    case fresh(TokenRecord, refreshedHere: Bool, observed: Int64)
    /// A forced refresh must wait this long for the gate.
    case deferred(Duration)
    /// Left alone until something changes; waiting requests are answered.
    case blocked(BlockedReason, detail: String? = nil)
    /// Try again after a backoff, at least `after` when the provider said so.
    case retry(RetryReason, after: Duration?)

    /// The outcome an error of the refresh protocol means. A configuration error waits
    /// `configurationRetry` (it needs a human).
    init(_ error: any Error, configurationRetry: Duration) {
        guard let error = error as? RefreshError else {
            self = .retry(.redis(String(describing: error)), after: nil)
            return
        }
        switch error {
        case .needsSeed: self = .blocked(.needsSeed)
        case .needsReauthorization: self = .blocked(.needsReauth)
        case .configMismatch: self = .blocked(.configMismatch)
        case .unreadableSecret(let problem):
            if case .unknownKey = problem {
                self = .blocked(.unknownKey, detail: "\(problem)")
            } else {
                self = .blocked(.unreadableSecret, detail: "\(problem)")
            }
        case .busy: self = .retry(.busy, after: .milliseconds(500))
        case .leaseLost: self = .retry(.leaseLost, after: .milliseconds(500))
        case .rotatedTokenSuperseded: self = .retry(.rotatedTokenSuperseded, after: .milliseconds(100))
        case .secretReplaced: self = .retry(.secretReplaced, after: .milliseconds(100))
        case .replicasNotAcknowledged: self = .retry(.replicasNotAcknowledged, after: .milliseconds(500))
        case .provider(_, let failure):
            switch failure {
            case .unavailable(_, _, let retryAfter): self = .retry(.provider(code: failure.code), after: retryAfter)
            case .configuration: self = .retry(.provider(code: failure.code), after: configurationRetry)
            default: self = .retry(.provider(code: failure.code), after: nil)
            }
        }
    }
}
