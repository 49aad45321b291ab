import BatonTestSupport
import XCTest

@testable import BatonRedis

/// Slot computation, key positions, redirect and slot-map parsing: no server needed. The same
/// computations are checked against a real cluster's `CLUSTER KEYSLOT` in ``ClusterClientTests``.
final class ClusterRoutingTests: XCTestCase {
    func testHashSlotFollowsTheClusterSpecification() {
        // The specification's check value: CRC16("123456789") = 0x31C3.
        XCTAssertEqual(HashSlot.crc16(Array("123456789".utf8)[...]), 0x31C3)
        XCTAssertEqual(HashSlot.of("123456789"), 0x31C3)
        XCTAssertEqual(HashSlot.of("{user1000}.following"), HashSlot.of("user1000"))
        XCTAssertEqual(HashSlot.of("foo{bar}{zap}"), HashSlot.of("bar"))
        XCTAssertEqual(HashSlot.of("foo{{bar}}zap"), HashSlot.of("{bar"))
        XCTAssertEqual(HashSlot.of("foo{}{bar}"), HashSlot.of("foo{}{bar}"))
        XCTAssertNotEqual(HashSlot.of("foo{}{bar}"), HashSlot.of("bar"), "an empty tag hashes the whole key")
        XCTAssertEqual(HashSlot.of("oauth:{svc}:token"), HashSlot.of("svc"))
        XCTAssertEqual(HashSlot.of("{oauth:refresh-requests}:processing:r1"), HashSlot.of("oauth:refresh-requests"))
        XCTAssertEqual(HashSlot.of(""), 0)
        // The table-driven CRC agrees with the bit-by-bit one of the test support for many keys.
        for index in 0..<2000 {
            let key = "key:\(index):" + String(repeating: "é", count: index % 7) + (index % 3 == 0 ? "{t\(index)}" : "")
            XCTAssertEqual(HashSlot.of(key), RedisClusterProcess.keySlot(key), key)
        }
    }

    func testRoutingKeyPositions() {
        func key(_ arguments: String...) -> String? {
            RedisCommand(rawArguments: arguments.map { Array($0.utf8) }).routingKey.map {
                String(decoding: $0, as: UTF8.self)
            }
        }
        XCTAssertEqual(key("GET", "a"), "a")
        XCTAssertEqual(key("set", "a", "1", "PX", "10"), "a", "names are case-insensitive")
        XCTAssertEqual(key("BLMOVE", "src", "dst", "RIGHT", "LEFT", "1"), "src")
        XCTAssertEqual(key("EVALSHA", "abc", "2", "k1", "k2", "arg"), "k1")
        XCTAssertEqual(key("EVAL", "return 1", "0", "arg"), nil, "a script without keys goes anywhere")
        XCTAssertEqual(key("FCALL", "f", "1", "k"), "k")
        XCTAssertEqual(key("XREAD", "COUNT", "2", "streams", "s1", "s2", "0", "0"), "s1")
        XCTAssertEqual(key("BLMPOP", "1", "2", "l1", "l2", "LEFT"), "l1")
        XCTAssertEqual(key("ZUNION", "2", "z1", "z2"), "z1")
        XCTAssertEqual(key("OBJECT", "ENCODING", "k"), "k")
        XCTAssertEqual(key("BITOP", "AND", "dest", "a", "b"), "dest")
        for keyless in ["PING", "TIME", "INFO", "WAIT", "MULTI", "EXEC", "ROLE", "CLIENT", "CLUSTER", "SCRIPT"] {
            XCTAssertNil(key(keyless, "x", "y"), keyless)
        }
        XCTAssertNil(key("PUBLISH", "oauth:{svc}:changed", "1"), "a classic PUBLISH reaches every node")
        XCTAssertNil(key("GET"), "no argument, no key")
        XCTAssertEqual(RedisCommand("GET", "{svc}:token").hashSlot, HashSlot.of("svc"))
    }

    func testRedirectsAreParsed() throws {
        let moved = try XCTUnwrap(ClusterRedirect(errorMessage: "MOVED 3999 127.0.0.1:6381", replyingHost: "h"))
        XCTAssertEqual(moved, ClusterRedirect(kind: .moved, slot: 3999, target: .tcp(host: "127.0.0.1", port: 6381)))
        let ask = try XCTUnwrap(ClusterRedirect(errorMessage: "ASK 12 ::1:7000", replyingHost: nil))
        XCTAssertEqual(ask, ClusterRedirect(kind: .ask, slot: 12, target: .tcp(host: "::1", port: 7000)))
        XCTAssertEqual(
            ClusterRedirect(errorMessage: "MOVED 1 :7001", replyingHost: "10.0.0.5")?.target,
            .tcp(host: "10.0.0.5", port: 7001), "an empty host is the node that answered")
        XCTAssertEqual(
            ClusterRedirect(errorMessage: "MOVED 1 [fe80::1]:7001", replyingHost: nil)?.target,
            .tcp(host: "fe80::1", port: 7001))
        XCTAssertNil(ClusterRedirect(errorMessage: "MOVED 99999 h:1", replyingHost: nil), "slot out of range")
        XCTAssertNil(ClusterRedirect(errorMessage: "ERR MOVED 1 h:1", replyingHost: nil))
        XCTAssertNil(ClusterRedirect(errorMessage: "MOVED 1 h", replyingHost: nil))

        XCTAssertTrue(RedisError.server(.init(message: "MOVED 1 h:1", command: "GET")).isClusterRedirect)
        XCTAssertTrue(RedisError.server(.init(message: "ASK 1 h:1", command: "GET")).isClusterRedirect)
        XCTAssertFalse(RedisError.server(.init(message: "TRYAGAIN Multiple keys", command: "GET")).isClusterRedirect)
        XCTAssertFalse(RedisError.connectionRefused(address: "h:1").isClusterRedirect)
        XCTAssertTrue(RESPValue.error("TRYAGAIN Multiple keys request during rehashing of slot").isClusterRetryLater)
        XCTAssertTrue(RESPValue.error("CLUSTERDOWN The cluster is down").isClusterRetryLater)
        XCTAssertFalse(RESPValue.error("ERR unknown command").isClusterRetryLater)
    }

    func testOnlyAFailedConnectMeansNothingWasSent() {
        XCTAssertTrue(RedisError.connectionRefused(address: "h:1").meansNothingWasSent)
        XCTAssertTrue(RedisError.connectionFailed(address: "h:1", reason: "unreachable").meansNothingWasSent)
        XCTAssertTrue(RedisError.timeout(address: "h:1", operation: "connect", after: .seconds(1)).meansNothingWasSent)
        XCTAssertFalse(
            RedisError.timeout(address: "h:1", operation: "the reply to GET", after: .seconds(1)).meansNothingWasSent)
        XCTAssertFalse(RedisError.connectionLost(address: "h:1", command: "SET", reason: "reset").meansNothingWasSent)
        XCTAssertFalse(RedisError.closed.meansNothingWasSent)
    }

    func testClusterShardsReplyIsRead() throws {
        func node(_ ip: String, _ endpoint: String, port: Int, tlsPort: Int? = nil, role: String) -> RESPValue {
            var fields: [RESPValue] = [
                .bulk(Array("id".utf8)), .bulk(Array(String(repeating: "a", count: 40).utf8)),
                .bulk(Array("port".utf8)), .integer(Int64(port)),
                .bulk(Array("ip".utf8)), .bulk(Array(ip.utf8)),
                .bulk(Array("endpoint".utf8)), .bulk(Array(endpoint.utf8)),
                .bulk(Array("role".utf8)), .bulk(Array(role.utf8)),
                .bulk(Array("health".utf8)), .bulk(Array("online".utf8)),
            ]
            if let tlsPort { fields += [.bulk(Array("tls-port".utf8)), .integer(Int64(tlsPort))] }
            return .array(fields)
        }
        func shard(_ ranges: [Int], _ nodes: [RESPValue]) -> RESPValue {
            .array([
                .bulk(Array("slots".utf8)), .array(ranges.map { .integer(Int64($0)) }),
                .bulk(Array("nodes".utf8)), .array(nodes),
            ])
        }
        let reply = RESPValue.array([
            shard(
                [0, 5460, 16000, 16383],
                [
                    node("10.0.0.1", "10.0.0.1", port: 7000, role: "master"),
                    node("10.0.0.4", "10.0.0.4", port: 7003, role: "replica"),
                ]),
            shard(
                [5461, 10922],
                [
                    node("10.0.0.5", "10.0.0.5", port: 7004, role: "replica"),
                    node("10.0.0.2", "?", port: 7001, tlsPort: 8001, role: "master"),
                ]),
            // A master whose addresses are unknown is the node that answered.
            shard([10923, 15999], [node("", "", port: 7002, role: "master")]),
            // A shard without slots (a new master) routes nothing.
            shard([], [node("10.0.0.9", "10.0.0.9", port: 7009, role: "master")]),
        ])
        let map = try ClusterSlotMap(shards: reply, askedHost: "asked", tls: false)
        XCTAssertEqual(map.master(ofSlot: 0), .tcp(host: "10.0.0.1", port: 7000))
        XCTAssertEqual(map.master(ofSlot: 16383), .tcp(host: "10.0.0.1", port: 7000))
        XCTAssertEqual(map.master(ofSlot: 5461), .tcp(host: "10.0.0.2", port: 7001), "the ip when the endpoint is '?'")
        XCTAssertEqual(map.master(ofSlot: 15999), .tcp(host: "asked", port: 7002))
        XCTAssertEqual(map.servedSlots, HashSlot.count)
        XCTAssertEqual(map.anyMaster, .tcp(host: "10.0.0.1", port: 7000))
        XCTAssertEqual(map.nodes.count, 6, "replicas are remembered as nodes to ask")

        let tls = try ClusterSlotMap(shards: reply, askedHost: "asked", tls: true)
        XCTAssertEqual(tls.master(ofSlot: 6000), .tcp(host: "10.0.0.2", port: 8001), "TLS clients use tls-port")
        XCTAssertEqual(tls.master(ofSlot: 0), .tcp(host: "10.0.0.1", port: 7000), "or port when there is none")

        var patched = map
        patched.assign(slot: 42, to: .tcp(host: "10.0.0.9", port: 7009))
        XCTAssertEqual(patched.master(ofSlot: 42), .tcp(host: "10.0.0.9", port: 7009))
        XCTAssertEqual(patched.master(ofSlot: 43), .tcp(host: "10.0.0.1", port: 7000))

        XCTAssertThrowsError(try ClusterSlotMap(shards: .status("OK"), askedHost: "a", tls: false))
        XCTAssertThrowsError(
            try ClusterSlotMap(
                shards: .array([shard([0, 99999], [node("h", "h", port: 1, role: "master")])]), askedHost: "a",
                tls: false))
    }

    func testClusterSlotsReplyIsRead() throws {
        func node(_ host: String, _ port: Int) -> RESPValue {
            .array([.bulk(Array(host.utf8)), .integer(Int64(port)), .bulk(Array("id".utf8))])
        }
        let reply = RESPValue.array([
            .array([.integer(0), .integer(8191), node("10.0.0.1", 7000), node("10.0.0.3", 7002)]),
            .array([.integer(8192), .integer(16383), node("", 7001)]),
        ])
        let map = try ClusterSlotMap(slots: reply, askedHost: "asked")
        XCTAssertEqual(map.master(ofSlot: 8191), .tcp(host: "10.0.0.1", port: 7000))
        XCTAssertEqual(map.master(ofSlot: 8192), .tcp(host: "asked", port: 7001))
        XCTAssertEqual(map.nodes.count, 3)
        XCTAssertThrowsError(try ClusterSlotMap(slots: .array([.array([.integer(5), .integer(1)])]), askedHost: "a"))
    }
}
