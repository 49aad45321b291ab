import BatonSupport

/// An error reply from the Redis server, with its text kept verbatim.
public struct RedisServerError: Error, Sendable, Hashable {
    /// Redis's own error text, for example `NOPERM this user has no permissions to run the 'set' command`.
    public let message: String
    /// The command that drew the error (its name only: arguments may be secrets).
    public let command: String

    /// Creates a server error from the reply text and the command that drew it.
    public init(message: String, command: String) {
        self.message = message
        self.command = command
    }

    /// The error code: the reply's first word (`WRONGTYPE`, `NOAUTH`, `NOPERM`, `READONLY`,
    /// `NOSCRIPT`, `WRONGPASS`, `ERR`, ...).
    public var code: String {
        String(message.prefix { $0 != " " })
    }
}

/// Everything that can go wrong talking to Redis.
///
/// Each case carries the context needed to act on it: the address that refused, how long a
/// timeout waited, the server's text verbatim. Passwords never appear in any case.
public enum RedisError: Error, Sendable {
    /// The server answered with an error reply.
    case server(RedisServerError)
    /// Nothing accepted the connection at this address (the server is down or the port is wrong).
    case connectionRefused(address: String)
    /// Connecting failed for another reason (DNS, unreachable network, missing socket file, ...).
    case connectionFailed(address: String, reason: String)
    /// Connecting or waiting for a reply took longer than the configured timeout.
    ///
    /// After a command timeout the connection is dropped: the late reply could otherwise be read
    /// as the answer to the next command.
    case timeout(address: String, operation: String, after: Duration)
    /// The connection broke while a command was in flight. The command may or may not have run:
    /// it is not sent again automatically.
    case connectionLost(address: String, command: String, reason: String)
    /// The TLS handshake failed: an untrusted or expired certificate, a name mismatch, a plain
    /// port, a refused client certificate, or a TLS file that could not be loaded.
    case tlsFailed(address: String, reason: String)
    /// No Sentinel named a master: each Sentinel's answer or failure is in `reasons`.
    case masterUnavailable(masterName: String, reasons: [String])
    /// The server a Sentinel named as master answers `ROLE` with another role (a failover is
    /// under way); the next attempt asks the Sentinels again.
    case notAMaster(address: String, role: String)
    /// The server sent bytes that are not valid RESP (or hiredis rejected them).
    case protocolError(address: String, detail: String)
    /// No pooled connection became free before the pool's wait deadline.
    case poolTimeout(waited: Duration, poolSize: Int)
    /// A Redis URL could not be parsed. The URL is printed through ``RedisEndpoint/redacted(_:)``
    /// (again, whoever built the case): no password reaches the message.
    case invalidURL(String, reason: String)
    /// The reply had a shape the caller did not expect.
    case unexpectedReply(command: String, reply: String)
    /// The client or subscription was shut down.
    case closed
}

extension RedisError: CustomStringConvertible {
    /// A message that says what happened and what to do next.
    public var description: String {
        switch self {
        case .server(let error):
            let hint: String
            switch error.code {
            case "NOAUTH", "WRONGPASS":
                hint = " (check the user name and password in the Redis URL, e.g. redis://user:password@host:6379)"
            case "NOPERM":
                hint = " (the Redis ACL user lacks a permission: grant it with ACL SETUSER, or use another user)"
            case "READONLY":
                hint = " (this server is a read-only replica: point the URL at the master, or use Sentinel)"
            case "WRONGTYPE":
                hint = " (the key holds another data type: check the key name and prefix)"
            default:
                hint = ""
            }
            return "Redis answered \(error.command) with an error: \(error.message)\(hint)"
        case .connectionRefused(let address):
            return
                "connection refused by Redis at \(address): is redis-server running there? (check the URL or BATON_REDIS_URL)"
        case .connectionFailed(let address, let reason):
            return "could not connect to Redis at \(address): \(reason)"
        case .timeout(let address, let operation, let after):
            return
                "Redis at \(address) did not answer \(operation) within \(after.shortDescription): the server may be overloaded or stalled; the connection was dropped"
        case .connectionLost(let address, let command, let reason):
            return
                "connection to Redis at \(address) was lost while \(command) was in flight (\(reason)); it may or may not have run and was not sent again"
        case .tlsFailed(let address, let reason):
            return "TLS connection to Redis at \(address) failed: \(reason)"
        case .masterUnavailable(let masterName, let reasons):
            let detail = reasons.isEmpty ? "" : ": " + reasons.joined(separator: "; ")
            return
                "no Sentinel named a master for '\(masterName)'\(detail) (check the Sentinel addresses, the master name after '#', and BATON_SENTINEL_PASSWORD if the Sentinels require one)"
        case .notAMaster(let address, let role):
            return
                "the server at \(address) that Sentinel named as master reports role '\(role)': a failover is under way; Baton asks the Sentinels again"
        case .protocolError(let address, let detail):
            return "protocol error talking to Redis at \(address): \(detail)"
        case .poolTimeout(let waited, let poolSize):
            return
                "no Redis connection became free within \(waited.shortDescription) (pool of \(poolSize)): raise the pool size or the wait deadline"
        case .invalidURL(let url, let reason):
            return
                "invalid Redis URL '\(RedisEndpoint.redacted(url))': \(reason); expected \(BatonDefaults.redisURLForms)"
        case .unexpectedReply(let command, let reply):
            return "unexpected reply to \(command): \(reply)"
        case .closed:
            return "the Redis client was shut down"
        }
    }

    /// The server's error when this is a server error reply.
    public var serverError: RedisServerError? {
        if case .server(let error) = self { return error }
        return nil
    }

    /// Whether the error means Redis could not be reached or the connection broke (as opposed to
    /// the server answering with an error): callers retry these after a pause.
    public var isConnectionProblem: Bool {
        switch self {
        case .connectionRefused, .connectionFailed, .timeout, .connectionLost, .protocolError, .poolTimeout,
            .tlsFailed, .masterUnavailable, .notAMaster:
            return true
        case .server(let error):
            // A server that is still loading its data set, or a failed-over master, will come back.
            return ["LOADING", "READONLY", "MASTERDOWN", "TRYAGAIN", "CLUSTERDOWN"].contains(error.code)
        case .invalidURL, .unexpectedReply, .closed:
            return false
        }
    }
}
