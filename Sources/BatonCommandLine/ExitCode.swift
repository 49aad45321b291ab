/// The exit statuses of `baton`, a contract for scripts: each failure class has its own.
public enum ExitCode: Int32, Sendable, CaseIterable {
    /// Success.
    case success = 0
    /// An unexpected failure (a bug, or something not classified below).
    case failure = 1
    /// Bad usage or bad configuration: fix the command line or the config file.
    case usage = 2
    /// The credential needs re-authorisation (`invalid_grant`): seed a new refresh token.
    case needsReauthorization = 3
    /// The OAuth provider is unavailable (timeouts, 5xx, rate limited): retry later.
    case providerUnavailable = 4
    /// Redis is unavailable (refused, timed out, lost): check `BATON_REDIS_URL` and the server.
    case redisUnavailable = 5
    /// The token record is missing or expired (`baton get`): seed the service or wait for the coordinator.
    case tokenUnavailable = 6
    /// The lock or the refresh could not be had before the deadline (`EX_TEMPFAIL`).
    case timedOut = 75
}
