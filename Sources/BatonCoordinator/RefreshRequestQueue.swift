import BatonRedis
import BatonSupport
import BatonTokens
import Foundation

/// A worker's request for a token newer than the one that got a 401.
public struct RefreshRequest: Sendable, Hashable {
    /// The largest list entry accepted; anything longer is dropped unread (4 KiB).
    public static let maxEntryBytes = 4096

    /// Why a list entry is not a request. Such an entry is dropped on first sight, with a log line
    /// that describes it without quoting it.
    public enum Rejection: Error, Sendable, Equatable, CustomStringConvertible {
        /// Longer than ``RefreshRequest/maxEntryBytes``.
        case oversized(bytes: Int)
        /// Not `{"service":"NAME","version":N}`.
        case malformed(reason: String)

        public var description: String {
            switch self {
            case .oversized(let bytes): return "oversized: \(bytes) bytes, the limit is \(RefreshRequest.maxEntryBytes)"
            case .malformed(let reason): return "malformed: \(reason); expected {\"service\":\"NAME\",\"version\":N}"
            }
        }
    }

    /// The service.
    public let service: String
    /// The version the worker had; `nil` asks for "newer than what is stored now".
    public let version: Int64?
    /// How often replicas lacking the key of the service's secret handed it back
    /// (``RefreshRequestEntry/handedBackField``); 0 when absent or not a small whole number.
    public let handedBack: Int
    /// The raw list entry, to acknowledge it.
    public let entry: [UInt8]

    /// Parses `{"service":"my-api","version":12}` (the version may be a string of digits, as
    /// n8n's Redis node may send it, or absent).
    /// - Throws: ``Rejection``.
    public init(entry: [UInt8]) throws(Rejection) {
        guard entry.count <= Self.maxEntryBytes else { throw .oversized(bytes: entry.count) }
        guard let object = try? JSONSerialization.jsonObject(with: Data(entry)) as? [String: Any] else {
            throw .malformed(reason: "not a JSON object")
        }
        guard let service = object["service"] as? String else { throw .malformed(reason: "no \"service\" string") }
        var version: Int64?
        switch object["version"] {
        case nil, is NSNull:
            version = nil
        case let flag as NSNumber where String(cString: flag.objCType) == "c":  // JSON true/false
            throw .malformed(reason: "\"version\" is a boolean")
        case let number as NSNumber:
            guard let exact = Self.integer(number) else { throw .malformed(reason: "\"version\" is not an integer") }
            version = exact
        case let text as String:
            guard let number = Int64(text) else {
                throw .malformed(reason: "\"version\" is a string but not an integer")
            }
            version = number
        default:
            throw .malformed(reason: "\"version\" is neither a number nor a string")
        }
        self.service = service
        self.version = version
        self.handedBack =
            (object[RefreshRequestEntry.handedBackField] as? NSNumber).flatMap {
                Self.integer($0).flatMap { Int(exactly: $0) }
            }.map { max(0, $0) } ?? 0
        self.entry = entry
    }

    /// A JSON number's exact `Int64` value: an integer as parsed (its `doubleValue` would round
    /// one above 2^53), a floating-point number only when whole and in range.
    private static func integer(_ number: NSNumber) -> Int64? {
        switch String(cString: number.objCType) {
        case "d", "f": return Int64(exactly: number.doubleValue)
        case "Q": return Int64(exactly: number.uint64Value)
        default: return number.int64Value
        }
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
///   `{prefix:refresh-requests}:replica:<replica>` (15 s TTL, renewed every housekeeping round)
///   expires, and any live replica moves the dead one's processing list back onto the request
///   list (each `LMOVE` is atomic, so nothing is duplicated or dropped), to be served again;
/// - moved into a live replica's list by a `BLMOVE` whose reply never arrived (the connection
///   broke after the server moved it): the replica counts the entries it has received and not
///   yet settled; an entry of its list beyond those counts, seen in two housekeeping rounds in a
///   row, goes back to the request list (``recoverUnreceived()``).
///
/// The braces make every one of these keys hash to the slot of `prefix:refresh-requests` itself,
/// as `BLMOVE` requires in Redis Cluster.
final class RefreshRequestQueue: Sendable {
    let requests: String
    let processing: String
    private let heartbeat: String
    private let processors: String
    private let prefix: String
    private let replica: String
    private let client: RedisClient
    private let counts = LockedBox(Counts())
    private let consumer = LockedBox<ReconnectingLoop<RedisConnection>?>(nil)

    private struct Counts: Sendable {
        /// Entries received from `BLMOVE` and not yet acknowledged or dropped, with their counts.
        var received: [[UInt8]: Int] = [:]
        /// Entries of the processing list this replica had not received at the last round.
        var unreceivedLastRound: [[UInt8]: Int] = [:]
    }

    /// Removes up to ARGV[2] copies of the entry ARGV[1] from a processing list (KEYS[1]) and
    /// pushes as many copies of ARGV[3] (the same entry, or it rewritten) onto the consuming end
    /// of the request list (KEYS[2]), atomically. Returns how many were moved.
    private static let putBack = RedisScript(
        """
        local moved = redis.call('LREM', KEYS[1], tonumber(ARGV[2]), ARGV[1])
        for _ = 1, moved do redis.call('RPUSH', KEYS[2], ARGV[3]) end
        return moved
        """)

    init(prefix: String, replica: String, client: RedisClient) {
        requests = TokenKeys.refreshRequests(prefix: prefix)
        processing = TokenKeys.processingList(prefix: prefix, replica: replica)
        heartbeat = TokenKeys.replicaHeartbeat(prefix: prefix, replica: replica)
        processors = TokenKeys.requestProcessors(prefix: prefix)
        self.prefix = prefix
        self.replica = replica
        self.client = client
    }

    /// What the heartbeat holds, for `baton status`: `{"started_at":MS,"version":"X"}`.
    private let heartbeatValue =
        #"{"started_at":\#(Int64(Date().timeIntervalSince1970 * 1000)),"version":"\#(BatonDefaults.version)"}"#

    /// Renews this replica's heartbeat and registers its processing list.
    func beat() async throws {
        _ = try await client.pipeline([
            RedisCommand("SET", heartbeat, heartbeatValue, "PX", 15_000),
            RedisCommand("SADD", processors, replica),
        ])
    }

    /// Removes this replica's heartbeat (a clean stop: its list is empty by then).
    func retire() async throws {
        _ = try await client.send("DEL", heartbeat)
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
            if member != replica,
                try await client.send("EXISTS", TokenKeys.replicaHeartbeat(prefix: prefix, replica: member)).integer
                    == 1
            {
                continue
            }
            let list = TokenKeys.processingList(prefix: prefix, replica: member)
            while try await !client.send("LMOVE", list, requests, "RIGHT", "RIGHT").isNull {
                recovered += 1
            }
            if member != replica { try await client.send("SREM", processors, member) }
        }
        if includingOwn { counts.withLockedValue { $0 = Counts() } }
        return recovered
    }

    /// Puts back the entries of this replica's processing list that it never received, once
    /// they have been seen in two rounds in a row (a `BLMOVE` reply in flight during the first
    /// look is received by the second).
    /// - Returns: how many requests were put back.
    @discardableResult
    func recoverUnreceived() async throws -> Int {
        let listed = (try await client.send("LRANGE", processing, 0, -1).array ?? []).compactMap(\.bytes)
        var counts: [[UInt8]: Int] = [:]
        for entry in listed { counts[entry, default: 0] += 1 }
        let confirmed: [[UInt8]: Int] = self.counts.withLockedValue { state in
            var stuck: [[UInt8]: Int] = [:]
            for (entry, count) in counts where count > state.received[entry, default: 0] {
                stuck[entry] = count - state.received[entry, default: 0]
            }
            var confirmed: [[UInt8]: Int] = [:]
            for (entry, count) in stuck where state.unreceivedLastRound[entry] != nil {
                confirmed[entry] = min(count, state.unreceivedLastRound[entry]!)
            }
            state.unreceivedLastRound = stuck.filter { confirmed[$0.key] == nil }
            return confirmed
        }
        var recovered = 0
        for (entry, count) in confirmed {
            recovered += Int(
                try await client.run(Self.putBack, keys: [processing, requests], arguments: [entry, count, entry])
                    .integer ?? 0
            )
        }
        return recovered
    }

    /// Acknowledges a handled request.
    func acknowledge(_ request: RefreshRequest) async throws {
        try await remove(request.entry)
    }

    /// Removes an entry this replica took (handled, or dropped as poison). The entry stops
    /// counting as received even when the `LREM` fails, so that ``recoverUnreceived()`` puts it
    /// back and it is handled (and removed) again.
    func remove(_ entry: [UInt8]) async throws {
        defer { settled(entry) }
        try await client.send("LREM", processing, 1, entry)
    }

    /// Hands a request this replica took but cannot serve back to the shared list as
    /// `replacement` (the entry rewritten: its version pinned, its hand-backs counted), atomically
    /// from its processing list onto the consuming end, for another replica to take. Like
    /// ``remove(_:)``, the entry stops counting as received even when this fails, so that
    /// ``recoverUnreceived()`` puts it back.
    /// - Returns: whether it was moved (not when another replica had already recovered it).
    func handBack(_ request: RefreshRequest, as replacement: [UInt8]) async throws -> Bool {
        defer { settled(request.entry) }
        let moved = try await client.run(
            Self.putBack, keys: [processing, requests], arguments: [request.entry, 1, replacement])
        return moved.integer == 1
    }

    /// One received copy of `entry` is settled: it no longer counts as received.
    private func settled(_ entry: [UInt8]) {
        counts.withLockedValue { state in
            if let count = state.received[entry] { state.received[entry] = count > 1 ? count - 1 : nil }
        }
    }

    /// The replicas whose heartbeat lives (this one included, once it has beaten).
    func liveReplicas() async throws -> Set<String> {
        let members = (try await client.send("SMEMBERS", processors).array ?? []).compactMap(\.string)
        let beats = try await client.pipeline(
            members.map { RedisCommand("EXISTS", TokenKeys.replicaHeartbeat(prefix: prefix, replica: $0)) })
        return Set(zip(members, beats).filter { $0.1.integer == 1 }.map(\.0))
    }

    /// Starts the consuming thread: a dedicated connection blocked in `BLMOVE` (1 s at a time, to
    /// notice ``stop(timeout:)``), handing each entry to `deliver`.
    ///
    /// In a Redis Cluster the connection goes to the master serving the request list's slot; after
    /// a `MOVED` or `ASK` (the slot moved) or a failover, the loop reconnects to its owner of the
    /// moment. A redirect is expected there, so it is not reported to `onError`.
    func start(deliver: @escaping @Sendable ([UInt8]) -> Void, onError: @escaping @Sendable (any Error) -> Void) {
        let (requests, processing, counts, client) = (self.requests, self.processing, self.counts, self.client)
        let loop = ReconnectingLoop(
            name: "baton-refresh-requests",
            connect: { try client.dedicatedConnection(routingKey: requests) },
            step: { connection in
                let reply = try connection.send(
                    RedisCommand("BLMOVE", requests, processing, "RIGHT", "LEFT", 1),
                    timeout: .some(.seconds(5)))
                if let entry = reply.bytes {
                    counts.withLockedValue { $0.received[entry, default: 0] += 1 }
                    deliver(entry)
                }
            },
            onError: { error in
                if (error as? RedisError)?.isClusterRedirect != true { onError(error) }
            }
        )
        consumer.withLockedValue { $0 = loop }
        loop.start()
    }

    /// Stops the consuming thread and waits (up to `timeout`) until it has left its last
    /// `BLMOVE`, so that nothing is taken after the caller puts this replica's list back.
    /// - Returns: whether the thread stopped in time.
    @discardableResult
    func stop(timeout: Duration = .seconds(7)) async -> Bool {
        guard let consumer = consumer.withLockedValue({ $0 }) else { return true }
        return await consumer.stop(waitingUpTo: timeout)
    }
}
