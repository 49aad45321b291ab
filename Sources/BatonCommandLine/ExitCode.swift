/// The exit statuses of `baton`, a contract for scripts: each failure class has its own.
/// (`baton lock run` also exits with its command's own status.)
public struct ExitCode: RawRepresentable, Hashable, Sendable {
    /// The process exit status.
    public let rawValue: Int32

    /// Wraps a status (for example a child command's, passed through).
    public init(rawValue: Int32) { self.rawValue = rawValue }

    /// Success.
    public static let success = ExitCode(rawValue: 0)
    /// An unexpected failure (a bug, or something not classified below).
    public static let failure = ExitCode(rawValue: 1)
    /// Bad usage or bad configuration: fix the command line or the config file (including a code
    /// exchange the provider refused as `invalid_request`, such as a mismatching redirect URI).
    public static let usage = ExitCode(rawValue: 2)
    /// The credential needs re-authorisation (`invalid_grant`): seed a new refresh token. For
    /// `baton seed --authorization-code-file`, the provider rejected the code: authorise again.
    public static let needsReauthorization = ExitCode(rawValue: 3)
    /// The OAuth provider is unavailable (timeouts, 5xx, rate limited): retry later.
    public static let providerUnavailable = ExitCode(rawValue: 4)
    /// Redis is unavailable (refused, timed out, lost): check `BATON_REDIS_URL` and the server.
    public static let redisUnavailable = ExitCode(rawValue: 5)
    /// The token record is missing or expired (`baton get`): seed the service or wait for the coordinator.
    public static let tokenUnavailable = ExitCode(rawValue: 6)
    /// The lock or the refresh could not be had before the deadline (`EX_TEMPFAIL`).
    public static let timedOut = ExitCode(rawValue: 75)
    /// `baton lock run`: the lock was lost while the command ran (it was sent SIGTERM).
    public static let lockLost = ExitCode(rawValue: 76)
    /// `baton lock run`: the command could not be started (not found, not executable).
    public static let commandNotFound = ExitCode(rawValue: 127)
}
