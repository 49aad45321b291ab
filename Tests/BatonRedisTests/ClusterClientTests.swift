import BatonRedis
import BatonSupport
import BatonTestSupport
import XCTest

/// ``RedisClient`` against a real Redis Cluster (three masters, three replicas) that each test
/// starts: routing by slot, pipelines across nodes, `MOVED` and `ASK` while slots move, dedicated
/// connections, a failover.
final class ClusterClientTests: RedisTestCase {
    private let incrementBy = RedisScript("return redis.call('INCRBY', KEYS[1], ARGV[1])")

    func testCommandsAndScriptsGoToTheNodeServingTheirSlot() async throws {
        let cluster = try await startCluster()
        let client = try makeClient(cluster)
        let masters = try cluster.masterPorts()
        var nodes: [Int: RedisConnection] = [:]
        for port in masters { nodes[port] = try cluster.connection(toNode: port) }

        let keys = (0..<300).map { key("\($0)") } + ["{tag}:a", "{tag}:b", "plain", "ünïcödé"]
        for key in keys.prefix(40) + keys.suffix(4) {
            let slot = try nodes[masters[0]]!.send(RedisCommand("CLUSTER", "KEYSLOT", key)).integer
            XCTAssertEqual(Int64(HashSlot.of(key)), slot, key)
        }
        for (index, key) in keys.enumerated() {
            try await client.set(key, to: "v\(index)")
        }
        var perNode: [Int: Int] = [:]
        for (index, key) in keys.enumerated() {
            let owner = try cluster.masterPort(forSlot: HashSlot.of(key))
            perNode[owner, default: 0] += 1
            XCTAssertEqual(try nodes[owner]!.send(RedisCommand("GET", key)).string, "v\(index)", key)
            if index % 50 == 0 {
                let read = try await client.get(key)
                XCTAssertEqual(read.map { String(decoding: $0, as: UTF8.self) }, "v\(index)")
            }
        }
        XCTAssertEqual(Set(perNode.keys), Set(masters), "the keys spread over every master: \(perNode)")

        // Scripts: EVALSHA first, EVAL on each node's NOSCRIPT, routed by KEYS[1].
        let counters = (0..<30).map { key("counter\($0)") }
        for counter in counters {
            let first = try await client.run(incrementBy, keys: [counter], arguments: [5])
            let second = try await client.run(incrementBy, keys: [counter], arguments: [2])
            XCTAssertEqual([first, second], [.integer(5), .integer(7)])
        }
        for (port, node) in nodes {
            let loaded = try node.send(RedisCommand("SCRIPT", "EXISTS", incrementBy.sha1)).array?.first?.integer
            XCTAssertEqual(loaded, 1, "the script was loaded on \(port)")
        }

        // Exclusive connections, with a routing key, from async and blocking callers.
        let tagged = key("{tx}:")
        let replies = try await client.withConnection(routingKey: tagged + "a") { connection in
            try connection.send(RedisCommand("MULTI"))
            try connection.send(RedisCommand("SET", tagged + "a", "1"))
            try connection.send(RedisCommand("INCR", tagged + "b"))
            return try connection.send(RedisCommand("EXEC")).array ?? []
        }
        XCTAssertEqual(replies, [.status("OK"), .integer(1)])
        let blocking = try await runOnDedicatedThread(named: "test-blocking") { [client] in
            try client.withConnectionBlocking(routingKey: tagged + "b") {
                try $0.send(RedisCommand("INCR", tagged + "b")).integer
            }
        }
        XCTAssertEqual(blocking, 2)
        let counted = try await runOnDedicatedThread(named: "test-blocking") { [client, counters] in
            try counters.map { try client.sendBlocking(RedisCommand("GET", $0)).integer ?? 0 }
        }
        XCTAssertEqual(counted, Array(repeating: 7, count: counters.count))
        // A command with its own timeout runs on the pool of its key's node.
        let popped = try await client.send(RedisCommand("BLPOP", key("empty"), "0.1"), timeout: .some(.seconds(3)))
        XCTAssertTrue(popped.isNull)

        // Keyless commands go to a master.
        try await client.ping()
        let now = try await client.serverTimeMilliseconds()
        XCTAssertGreaterThan(now, 1_600_000_000_000)
        let role = try await client.send("ROLE").array?.first?.string
        XCTAssertEqual(role, "master")
    }

    func testAPipelineAcrossNodesAnswersInOrder() async throws {
        let cluster = try await startCluster()
        let client = try makeClient(cluster)
        let masters = try cluster.masterPorts()
        // One key per master, found by slot.
        var byNode: [Int: String] = [:]
        var index = 0
        while byNode.count < masters.count {
            let candidate = key("p\(index)")
            let owner = try cluster.masterPort(forSlot: HashSlot.of(candidate))
            if byNode[owner] == nil { byNode[owner] = candidate }
            index += 1
        }
        let (a, b, c) = (byNode[masters[0]]!, byNode[masters[1]]!, byNode[masters[2]]!)
        try await client.send("RPUSH", c, "list")
        let replies = try await client.pipeline([
            RedisCommand("SET", a, "1"), RedisCommand("TIME"), RedisCommand("SET", b, "2"), RedisCommand("INCR", a),
            RedisCommand("GET", b), RedisCommand("INCR", c), RedisCommand("GET", key("missing")),
            RedisCommand("INCRBY", b, 40), RedisCommand("PING"), RedisCommand("GET", a),
        ])
        XCTAssertEqual(replies.count, 10)
        XCTAssertEqual(replies[0], .status("OK"))
        XCTAssertEqual(replies[1].array?.count, 2, "TIME: \(replies[1])")
        XCTAssertEqual(replies[2], .status("OK"))
        XCTAssertEqual(replies[3], .integer(2))
        XCTAssertEqual(replies[4].string, "2")
        XCTAssertTrue(replies[5].errorMessage?.hasPrefix("WRONGTYPE") ?? false, "an error in place: \(replies[5])")
        XCTAssertTrue(replies[6].isNull)
        XCTAssertEqual(replies[7], .integer(42))
        XCTAssertEqual(replies[8], .status("PONG"))
        XCTAssertEqual(replies[9].string, "2")

        // Many tasks, each pipelining over every node: no reply lost, crossed or reordered.
        let keys = (0..<40).map { key("n\($0)") }
        try await withThrowingTaskGroup(of: Void.self) { group in
            for task in 0..<8 {
                group.addTask {
                    for round in 0..<25 {
                        let batch = keys.map { RedisCommand("RPUSH", $0, "\(task):\(round)") }
                        let lengths = try await client.pipeline(batch + keys.map { RedisCommand("LINDEX", $0, -1) })
                        XCTAssertEqual(lengths.count, 2 * keys.count)
                        for (position, reply) in lengths.prefix(keys.count).enumerated() {
                            XCTAssertNotNil(reply.integer, "\(keys[position]): \(reply)")
                        }
                    }
                }
            }
            try await group.waitForAll()
        }
        let totals = try await client.pipeline(keys.map { RedisCommand("LLEN", $0) })
        XCTAssertEqual(totals, Array(repeating: .integer(200), count: keys.count))
        for key in keys.prefix(3) {
            let entries = (try await client.send("LRANGE", key, 0, -1).array ?? []).compactMap(\.string)
            for task in 0..<8 {
                let mine = entries.filter { $0.hasPrefix("\(task):") }
                XCTAssertEqual(mine, (0..<25).map { "\(task):\($0)" }, "one task's pushes stay in its order")
            }
        }
    }

    func testMovedIsFollowedWhileASlotMigrates() async throws {
        let cluster = try await startCluster()
        let client = try makeClient(cluster)
        let counter = key("{moving}:counter")
        let slot = HashSlot.of(counter)
        let stop = StopFlag()
        let failures = LockedBox([String]())
        let done = LockedBox(0)
        defer { stop.set() }
        try await client.set(counter, to: 0)
        // Async, pipelined, scripted, pooled and blocking increments, all the time.
        let (script, elsewhere) = (incrementBy, key("elsewhere"))
        let workers = (0..<4).map { worker in
            Task { [client] in
                while !stop.isSet {
                    do {
                        switch worker {
                        case 0: try await client.send("INCR", counter)
                        case 1:
                            let replies = try await client.pipeline([
                                RedisCommand("INCR", counter), RedisCommand("GET", elsewhere),
                            ])
                            if let error = replies[0].errorMessage {
                                throw RedisError.server(.init(message: error, command: "INCR"))
                            }
                        case 2: try await client.run(script, keys: [counter], arguments: [1])
                        default:
                            _ = try await client.withConnection(routingKey: counter) {
                                try $0.send(RedisCommand("INCR", counter))
                            }
                        }
                        done.withLockedValue { $0 += 1 }
                    } catch {
                        failures.withLockedValue { $0.append("worker \(worker): \(error)") }
                    }
                }
            }
        }
        let blocking = Thread {
            while !stop.isSet {
                do {
                    try client.sendBlocking(RedisCommand("INCR", counter))
                    done.withLockedValue { $0 += 1 }
                } catch {
                    failures.withLockedValue { $0.append("blocking: \(error)") }
                }
            }
        }
        blocking.start()

        let seen = { "failures so far: \(failures.withLockedValue { $0.prefix(5) })\n\(cluster.logDump)" }
        try await eventually("increments before the move", diagnostics: seen) { done.withLockedValue { $0 } > 200 }
        let owners = try cluster.masterPorts()
        let first = try cluster.masterPort(forSlot: slot)
        let second = owners.first { $0 != first }!
        try await cluster.migrateSlot(slot, to: second)
        let afterFirstMove = done.withLockedValue { $0 }
        try await eventually("increments after the first move", diagnostics: seen) {
            done.withLockedValue { $0 } > afterFirstMove + 200
        }
        let third = owners.first { $0 != first && $0 != second }!
        try await cluster.migrateSlot(slot, to: third)
        let afterSecondMove = done.withLockedValue { $0 }
        try await eventually("increments after the second move", diagnostics: seen) {
            done.withLockedValue { $0 } > afterSecondMove + 200
        }
        stop.set()
        for worker in workers { await worker.value }
        try await eventually("the blocking caller to stop") { blocking.isFinished }

        XCTAssertEqual(failures.withLockedValue { $0 }, [], "no caller saw the moves")
        let total = try await client.get(counter).map { String(decoding: $0, as: UTF8.self) }
        XCTAssertEqual(total, String(done.withLockedValue { $0 }), "every increment ran exactly once")
        XCTAssertEqual(
            try cluster.connection(toNode: third).send(RedisCommand("GET", counter)).string, total,
            "the counter lives on its new node")
    }

    func testAskIsFollowedWhileASlotIsHalfMigrated() async throws {
        let cluster = try await startCluster()
        let client = try makeClient(cluster)
        let (moved, stayed, created) = (key("{half}:moved"), key("{half}:stayed"), key("{half}:created"))
        let slot = HashSlot.of(moved)
        try await client.set(moved, to: "M")
        try await client.set(stayed, to: "S")
        let source = try cluster.masterPort(forSlot: slot)
        let target = try cluster.masterPorts().first { $0 != source }!
        let migration = try cluster.beginSlotMigration(slot, to: target, movingKeys: [moved])
        let direct = try cluster.connection(toNode: source)
        XCTAssertThrowsError(try direct.send(RedisCommand("GET", moved))) { error in
            XCTAssertTrue((error as? RedisError)?.isClusterRedirect ?? false, "\(error)")
        }

        // Shared pipelined path: ASKING and the command go to the target together.
        let read = try await client.get(moved)
        XCTAssertEqual(read, Array("M".utf8))
        let replies = try await client.pipeline([
            RedisCommand("GET", stayed), RedisCommand("GET", moved), RedisCommand("SET", created, "C"),
            RedisCommand("GET", stayed),
        ])
        XCTAssertEqual(
            replies, [.bulk(Array("S".utf8)), .bulk(Array("M".utf8)), .status("OK"), .bulk(Array("S".utf8))])
        // A new key of a migrating slot is created on the target (the source sends it there).
        let onTarget = try cluster.connection(toNode: target).pipeline([
            RedisCommand("ASKING"), RedisCommand("GET", created),
        ])
        XCTAssertEqual(onTarget[1].string, "C")
        let scripted = try await client.run(incrementBy, keys: [key("{half}:n")], arguments: [3])
        XCTAssertEqual(scripted, .integer(3))

        // Pooled connections: the body runs on the target with ASKING before its first command.
        let pooled = try await client.withConnection(routingKey: moved) {
            try $0.send(RedisCommand("GET", moved)).string
        }
        XCTAssertEqual(pooled, "M")
        let blocking = try await runOnDedicatedThread(named: "test-blocking") { [client] in
            try client.sendBlocking(RedisCommand("APPEND", moved, "+")).integer
        }
        XCTAssertEqual(blocking, 2)

        // An ASK does not move the slot: the key that stayed is still read from the source.
        XCTAssertEqual(try direct.send(RedisCommand("GET", stayed)).string, "S")
        try await cluster.finishSlotMigration(migration)
        let after = try await client.pipeline([
            RedisCommand("GET", moved), RedisCommand("GET", stayed), RedisCommand("GET", created),
        ])
        XCTAssertEqual(after.map(\.string), ["M+", "S", "C"])
    }

    func testADedicatedConnectionGoesToTheSlotOwnerAndIsRemadeAfterAMove() async throws {
        let cluster = try await startCluster()
        let client = try makeClient(cluster)
        let list = key("{queue}:requests")
        let processing = key("{queue}:processing")
        let slot = HashSlot.of(list)
        let owner = try cluster.masterPort(forSlot: slot)
        try await client.send("LPUSH", list, "r1")
        let connection = try await runOnDedicatedThread(named: "test-dedicated") { [client] in
            try client.dedicatedConnection(routingKey: list)
        }
        XCTAssertEqual(connection.serverAddress, "127.0.0.1:\(owner)")
        let taken = try await runOnDedicatedThread(named: "test-dedicated") {
            try connection.send(
                RedisCommand("BLMOVE", list, processing, "RIGHT", "LEFT", 1), timeout: .some(.seconds(5)))
        }
        XCTAssertEqual(taken.string, "r1")

        let newOwner = try cluster.masterPorts().first { $0 != owner }!
        try await cluster.migrateSlot(slot, to: newOwner)
        try await client.send("LPUSH", list, "r2")
        let redirected = await runOnDedicatedThread(named: "test-dedicated") {
            Result { try connection.send(RedisCommand("BLMOVE", list, processing, "RIGHT", "LEFT", 1)) }
        }
        XCTAssertThrowsError(try redirected.get()) { error in
            XCTAssertTrue((error as? RedisError)?.isClusterRedirect ?? false, "\(error)")
        }
        let remade = try await runOnDedicatedThread(named: "test-dedicated") { [client] in
            try client.dedicatedConnection(routingKey: list)
        }
        XCTAssertEqual(remade.serverAddress, "127.0.0.1:\(newOwner)")
        let next = try await runOnDedicatedThread(named: "test-dedicated") {
            try remade.send(RedisCommand("BLMOVE", list, processing, "RIGHT", "LEFT", 1), timeout: .some(.seconds(5)))
        }
        XCTAssertEqual(next.string, "r2")
        // Without a routing key: a master.
        let any = try await runOnDedicatedThread(named: "test-dedicated") { [client] in
            try client.dedicatedConnection(routingKey: nil).send(RedisCommand("ROLE")).array?.first?.string
        }
        XCTAssertEqual(any, "master")
    }

    func testTheClientFollowsAFailover() async throws {
        let cluster = try await startCluster()
        let client = try makeClient(cluster)
        let survivor = key("{failover}:value")
        let slot = HashSlot.of(survivor)
        try await client.set(survivor, to: "kept")
        let acknowledged = try await client.withConnection(routingKey: survivor) {
            try $0.send(RedisCommand("SET", survivor, "kept"))
            return try $0.send(RedisCommand("WAIT", 1, 5000), timeout: .some(.seconds(10))).integer
        }
        XCTAssertEqual(acknowledged, 1, "the replica has the value")
        let master = try cluster.masterPort(forSlot: slot)
        var elsewhere = key("other")
        while try cluster.masterPort(forSlot: HashSlot.of(elsewhere)) == master { elsewhere += "x" }
        try await client.set(elsewhere, to: "up")

        let killed = try cluster.killMaster(ofSlot: slot)
        // The other masters serve on while the failover happens.
        let other = try await client.get(elsewhere)
        XCTAssertEqual(other, Array("up".utf8))
        let promoted = try await cluster.waitForFailover(awayFrom: killed)
        let read = try await eventually("a read after the failover", diagnostics: { cluster.logDump }) {
            try? await client.get(survivor)
        }
        XCTAssertEqual(read, Array("kept".utf8))
        try await client.set(survivor, to: "written after")
        XCTAssertEqual(
            try cluster.connection(toNode: promoted).send(RedisCommand("GET", survivor)).string, "written after")
        let pooled = try await client.withConnection(routingKey: survivor) { try $0.send(RedisCommand("ROLE")) }
        XCTAssertEqual(pooled.array?.first?.string, "master", "the pool follows too")
    }
}
