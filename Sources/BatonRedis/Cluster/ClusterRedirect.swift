/// A Redis Cluster node's answer that the command belongs elsewhere: `MOVED slot host:port` (the
/// slot is served by that node from now on) or `ASK slot host:port` (the slot is being migrated
/// there and this key is already on it: send `ASKING` and the command to it, once).
struct ClusterRedirect: Sendable, Hashable {
    enum Kind: Sendable, Hashable {
        case moved, ask
    }

    let kind: Kind
    let slot: Int
    /// The node named in the reply.
    let target: RedisEndpoint.Transport

    init(kind: Kind, slot: Int, target: RedisEndpoint.Transport) {
        self.kind = kind
        self.slot = slot
        self.target = target
    }

    /// Parses an error reply's text; `nil` when it is not a redirect.
    /// - Parameter replyingHost: the host of the node that answered: an empty host in the reply
    ///   (a node that does not know its own address) means that one.
    init?(errorMessage: String, replyingHost: String?) {
        let words = errorMessage.split(separator: " ")
        guard words.count == 3, let slot = Int(words[1]), (0..<HashSlot.count).contains(slot),
            let colon = words[2].lastIndex(of: ":"), let port = Int(words[2][words[2].index(after: colon)...])
        else { return nil }
        switch words[0] {
        case "MOVED": kind = .moved
        case "ASK": kind = .ask
        default: return nil
        }
        var host = String(words[2][..<colon])
        if host.hasPrefix("[") && host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
        if host.isEmpty {
            guard let replyingHost else { return nil }
            host = replyingHost
        }
        self.slot = slot
        self.target = .tcp(host: host, port: port)
    }

    /// Whether an error text is `TRYAGAIN` or `CLUSTERDOWN` (see ``RESPValue/isClusterRetryLater``).
    static func asksToRetryLater(_ message: String) -> Bool {
        message.hasPrefix("TRYAGAIN") || message.hasPrefix("CLUSTERDOWN")
    }

    /// The redirect in an error reply, if it is one.
    init?(_ reply: RESPValue, replyingHost: String?) {
        guard let message = reply.errorMessage else { return nil }
        self.init(errorMessage: message, replyingHost: replyingHost)
    }
}

extension RESPValue {
    /// Whether this error reply asks to try the same node again a little later: `TRYAGAIN` (a
    /// multi-key command while its slot is half migrated) or `CLUSTERDOWN` (the cluster cannot
    /// serve the slot now, typically during a failover).
    var isClusterRetryLater: Bool {
        errorMessage.map(ClusterRedirect.asksToRetryLater) ?? false
    }
}

extension RedisError {
    /// Whether this is a Redis Cluster node's `MOVED` or `ASK` answer: the key's slot is served
    /// by another node now. ``RedisClient`` follows these itself; a connection from
    /// ``RedisClient/dedicatedConnection(routingKey:)`` does not: drop it and make a new one,
    /// which goes to the slot's new owner.
    public var isClusterRedirect: Bool {
        guard let message = serverError?.message else { return false }
        return ClusterRedirect(errorMessage: message, replyingHost: "") != nil
    }

    /// The redirect this error is, if any.
    func clusterRedirect(replyingHost: String?) -> ClusterRedirect? {
        serverError.flatMap { ClusterRedirect(errorMessage: $0.message, replyingHost: replyingHost) }
    }

    /// Whether the command surely never reached the server: connecting failed, so nothing was
    /// sent. Only these may be sent again elsewhere (after a failover); a command whose connection
    /// broke or timed out in flight may have run.
    var meansNothingWasSent: Bool {
        switch self {
        case .connectionRefused, .connectionFailed: return true
        case .timeout(_, let operation, _): return operation == "connect"
        default: return false
        }
    }
}
