import BatonRedis
import BatonTokens
import Foundation

/// A worker's request for a token newer than the one that got a 401.
public struct RefreshRequest: Sendable, Hashable {
    /// The service.
    public let service: String
    /// The version the worker had; `nil` asks for "newer than what is stored now".
    public let version: Int64?
    /// The raw list entry, to acknowledge it.
    public let entry: [UInt8]

    /// Parses `{"service":"my-api","version":12}`.
    /// - Returns: `nil` for anything else (logged and dropped by the coordinator).
    public init?(entry: [UInt8]) {
        guard let object = try? JSONSerialization.jsonObject(with: Data(entry)) as? [String: Any],
              let service = object["service"] as? String else { return nil }
        var version: Int64?
        if let number = object["version"] as? NSNumber, !(object["version"] is Bool) {
            version = number.int64Value
        } else if let text = object["version"] as? String, let number = Int64(text) {
            version = number  // n8n's Redis node may send numbers as strings
        } else if object["version"] != nil && !(object["version"] is NSNull) {
            return nil
        }
        self.service = service
        self.version = version
        self.entry = entry
    }
}

/// The forced-refresh request list, consumed reliably.
///
/// Workers `LPUSH prefix:refresh-requests '{"service":"my-api","version":12}'`. Each replica
/// moves entries atomically (`BLMOVE ... RIGHT LEFT`) into its own processing list
/// `{prefix:refresh-requests}:processing:<replica>` and removes them (`LREM`) only when handled,
/// so a request is never lost:
/// - pushed while no replica runs: it waits in the list until one starts;
/// - taken by a replica that dies: that replica's heartbeat key
///   `{prefix:refresh-requests}:replica:<replica>` (15 s TTL, renewed every 3 s) expires, and any
///   live replica moves the dead one's processing list back onto the request list (each `LMOVE`
///   is atomic, so nothing is duplicated or dropped), to be served again.
///
/// The braces make every one of these keys hash to the slot of `prefix:refresh-requests` itself,
/// as `BLMOVE` requires in Redis Cluster.
final class RefreshRequestQueue: @unchecked Sendable {
    let requests: String
    let processing: String
    private let heartbeat: String
    private let processors: String
    private let tag: String
    private let replica: String
    private let client: RedisClient
    private let endpoint: RedisEndpoint
    private let connectionOptions: RedisConnectionOptions
    private let stopped = StopFlag()

    init(prefix: String, replica: String, client: RedisClient) {
        requests = TokenKeys.refreshRequests(prefix: prefix)
        tag = "{\(requests)}"
        processing = "\(tag):processing:\(replica)"
        heartbeat = "\(tag):replica:\(replica)"
        processors = "\(tag):processors"
        self.replica = replica
        self.client = client
        self.endpoint = client.endpoint
        self.connectionOptions = client.options.connection
    }

    /// Renews this replica's heartbeat and registers its processing list.
    func beat() async throws {
        _ = try await client.pipeline([
            RedisCommand("SET", heartbeat, "1", "PX", 15_000),
            RedisCommand("SADD", processors, replica),
        ])
    }

    /// Moves the processing lists of replicas without a heartbeat (and this replica's own, left
    /// over from a previous run with the same id, when `includingOwn`) back onto the request list.
    /// - Returns: how many requests were recovered.
    @discardableResult
    func recoverAbandoned(includingOwn: Bool) async throws -> Int {
        let members = (try await client.send("SMEMBERS", processors).array ?? []).compactMap(\.string)
        var recovered = 0
        for member in members {
            if member == replica && !includingOwn { continue }
            if member != replica, try await client.send("EXISTS", "\(tag):replica:\(member)").integer == 1 { continue }
            let list = "\(tag):processing:\(member)"
            while try await !client.send("LMOVE", list, requests, "RIGHT", "RIGHT").isNull {
                recovered += 1
            }
            if member != replica { try await client.send("SREM", processors, member) }
        }
        return recovered
    }

    /// Acknowledges a handled request.
    func acknowledge(_ request: RefreshRequest) async throws {
        try await client.send("LREM", processing, 1, request.entry)
    }

    /// Starts the consuming thread: a dedicated connection blocked in `BLMOVE` (1 s at a time, to
    /// notice ``stop()``), handing each entry to `deliver`.
    func start(deliver: @escaping @Sendable ([UInt8]) -> Void, onError: @escaping @Sendable (any Error) -> Void) {
        let thread = Thread { [self] in
            var connection: RedisConnection?
            while !stopped.isSet {
                do {
                    if connection == nil {
                        connection = try RedisConnection(endpoint: endpoint, options: connectionOptions)
                    }
                    let reply = try connection!.send(RedisCommand("BLMOVE", requests, processing, "RIGHT", "LEFT", 1),
                                                     timeout: .some(.seconds(5)))
                    if let entry = reply.bytes { deliver(entry) }
                } catch {
                    connection = nil
                    onError(error)
                    Thread.sleep(forTimeInterval: 0.5)
                }
            }
        }
        thread.name = "baton-refresh-requests"
        thread.start()
    }

    func stop() {
        stopped.set()
    }
}
