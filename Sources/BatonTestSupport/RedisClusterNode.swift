import Foundation

/// One line of `CLUSTER NODES`: a node as another node (or itself) sees it.
public struct RedisClusterNode: Sendable, Equatable {
    /// A node's role.
    public enum Role: Sendable, Equatable {
        /// Serves slots.
        case master
        /// Replicates a master (``RedisClusterNode/masterID``).
        case replica
    }

    /// The node's 40-character id.
    public let id: String
    /// Its client port on 127.0.0.1.
    public let port: Int
    /// Master or replica.
    public let role: Role
    /// The master a replica follows; `nil` for a master.
    public let masterID: String?
    /// The raw flags: `myself`, `master`, `slave`, `fail?`, `fail`, `handshake`, `noaddr`, ...
    public let flags: [String]
    /// Whether the cluster bus link to it is up (`connected`).
    public let isConnected: Bool
    /// The slots it serves, as ranges.
    public let slots: [ClosedRange<Int>]
    /// Slots this node is migrating, with the target's id. Shown only in a node's view of itself.
    public let migrating: [Int: String]
    /// Slots this node is importing, with the source's id. Shown only in a node's view of itself.
    public let importing: [Int: String]
    /// Its process id, when the node is one of this test's running processes.
    public internal(set) var pid: Int32?

    /// Whether the viewing node thinks it is failing (`fail?`) or failed (`fail`).
    public var isFailing: Bool { flags.contains("fail") || flags.contains("fail?") }

    /// Whether it serves `slot`.
    public func serves(_ slot: Int) -> Bool { slots.contains { $0.contains(slot) } }

    /// Parses one `CLUSTER NODES` line:
    /// `<id> <ip:port@cport> <flags> <master> <ping-sent> <pong-recv> <epoch> <link> <slot>...`,
    /// where a slot is `N`, `N-M`, `[N->-target]` (migrating) or `[N-<-source]` (importing).
    /// - Returns: `nil` for a line that does not have that shape.
    init?(line: Substring) {
        let words = line.split(separator: " ")
        // The address is `ip:port@cport`, followed by `,hostname` when one is announced.
        guard words.count >= 8, let address = words[1].split(separator: "@").first,
            let colon = address.lastIndex(of: ":"), let port = Int(address[address.index(after: colon)...])
        else { return nil }
        id = String(words[0])
        self.port = port
        flags = words[2].split(separator: ",").map(String.init)
        role = flags.contains("slave") ? .replica : .master
        masterID = words[3] == "-" ? nil : String(words[3])
        isConnected = words[7] == "connected"
        var slots: [ClosedRange<Int>] = []
        var migrating: [Int: String] = [:]
        var importing: [Int: String] = [:]
        for word in words.dropFirst(8) {
            if word.hasPrefix("[") {
                let inner = word.dropFirst().dropLast()
                if let arrow = inner.range(of: "->-"), let slot = Int(inner[..<arrow.lowerBound]) {
                    migrating[slot] = String(inner[arrow.upperBound...])
                } else if let arrow = inner.range(of: "-<-"), let slot = Int(inner[..<arrow.lowerBound]) {
                    importing[slot] = String(inner[arrow.upperBound...])
                }
            } else if let dash = word.firstIndex(of: "-") {
                guard let first = Int(word[..<dash]), let last = Int(word[word.index(after: dash)...]) else {
                    return nil
                }
                slots.append(first...last)
            } else if let slot = Int(word) {
                slots.append(slot...slot)
            }
        }
        self.slots = slots
        self.migrating = migrating
        self.importing = importing
    }

    /// Every node in a `CLUSTER NODES` reply.
    static func parse(_ text: String) -> [RedisClusterNode] {
        text.split(whereSeparator: \.isNewline).compactMap(RedisClusterNode.init(line:))
    }
}
