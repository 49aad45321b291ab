import BatonRedis
import BatonTestSupport
import XCTest

final class RedisClientTests: RedisTestCase {
    func testSixteenConcurrentTasksShareThePoolWithoutLostOrCrossedReplies() async throws {
        let server = try startRedis()
        let client = try makeClient(server, options: .init(poolSize: 4))
        let prefix = key()
        let perTask = 200
        try await withThrowingTaskGroup(of: Void.self) { group in
            for task in 0..<16 {
                group.addTask {
                    for index in 0..<perTask {
                        let k = "\(prefix):\(task):\(index)"
                        let value = "task\(task)-value\(index)-" + String(repeating: "x", count: index % 50)
                        try await client.set(k, to: value)
                        let read = try await client.get(k)
                        XCTAssertEqual(read.map { String(decoding: $0, as: UTF8.self) }, value)
                        let length = try await client.send("STRLEN", k).integer
                        XCTAssertEqual(length, Int64(value.utf8.count))
                    }
                }
            }
            try await group.waitForAll()
        }
        let count = try await client.send("EVAL", "return #redis.call('KEYS', ARGV[1])", 0, prefix + ":*").integer
        XCTAssertEqual(count, Int64(16 * perTask))
        // Never more connections than the pool allows (+1 for this check's own).
        let clients = try await client.send("CLIENT", "LIST").string ?? ""
        XCTAssertLessThanOrEqual(clients.split(separator: "\n").count, 4)
    }

    func testBlockingCallersFromPlainThreads() throws {
        let server = try startRedis()
        let client = try makeClient(server, options: .init(poolSize: 2))
        let k = key()
        let threads = (0..<8).map { _ in
            Thread { for _ in 0..<100 { _ = try? client.sendBlocking(RedisCommand("INCR", k)) } }
        }
        threads.forEach { $0.start() }
        let deadline = Date().addingTimeInterval(20)
        var total: Int64 = 0
        while Date() < deadline {
            total = try client.sendBlocking(RedisCommand("GET", k)).integer ?? 0
            if total == 800 { break }
            Thread.sleep(forTimeInterval: 0.05)
        }
        XCTAssertEqual(total, 800)
        let value = try client.withConnectionBlocking { connection in
            try connection.pipeline([RedisCommand("INCR", k), RedisCommand("INCR", k)]).map(\.integer)
        }
        XCTAssertEqual(value, [801, 802])
    }

    func testPoolWaitDeadline() async throws {
        let server = try startRedis()
        let client = try makeClient(
            server,
            options: .init(
                connection: .init(commandTimeout: .seconds(5)), poolSize: 1, poolWaitTimeout: .milliseconds(200)
            ))
        try await client.ping()
        let list = key()
        let blocker = Task { try await client.send(RedisCommand("BLPOP", list, 1), timeout: .some(.seconds(3))) }
        try await Task.sleep(for: .milliseconds(100))
        // Ordinary commands share the pipelined connection: a busy pool does not hold them up.
        let pong = try await client.send("PING")
        XCTAssertEqual(pong, .status("PONG"))
        let started = ContinuousClock.now
        do {
            _ = try await client.withConnection { try $0.send(RedisCommand("PING")) }
            XCTFail("the single pooled connection was busy: exclusive work had to time out")
        } catch let error as RedisError {
            guard case .poolTimeout(let waited, let size) = error else { return XCTFail("\(error)") }
            XCTAssertEqual(waited, .milliseconds(200))
            XCTAssertEqual(size, 1)
        }
        XCTAssertLessThan(ContinuousClock.now - started, .milliseconds(900))
        _ = try await blocker.value
        try await client.ping()
    }

    func testConvenienceCommands() async throws {
        let server = try startRedis()
        let client = try makeClient(server)
        let k = key()
        let first = try await client.set(k, to: "a", expiry: .seconds(10), condition: .ifNotExists)
        XCTAssertTrue(first)
        let second = try await client.set(k, to: "b", condition: .ifNotExists)
        XCTAssertFalse(second)
        let value = try await client.get(k)
        XCTAssertEqual(value, Array("a".utf8))
        let ttl = try await client.send("PTTL", k).integer ?? 0
        XCTAssertGreaterThan(ttl, 9_000)
        let deleted = try await client.delete([k, k + "none"])
        XCTAssertEqual(deleted, 1)
        let gone = try await client.get(k)
        XCTAssertNil(gone)
        let serverNow = try await client.serverTimeMilliseconds()
        let hostNow = Int64(Date().timeIntervalSince1970 * 1000)
        XCTAssertLessThan(abs(serverNow - hostNow), 5_000)
        let receivers = try await client.publish("nobody", to: k)
        XCTAssertEqual(receivers, 0)
    }

    func testClientRecoversAfterRestart() async throws {
        let server = try startRedis()
        let client = try makeClient(server, options: .init(poolSize: 3))
        try await withThrowingTaskGroup(of: Void.self) { group in
            for _ in 0..<6 { group.addTask { try await client.ping() } }
            try await group.waitForAll()
        }
        try server.restart()
        // Every pooled connection was closed by the restart; each notices before sending.
        try await withThrowingTaskGroup(of: Void.self) { group in
            let prefix = key()
            for index in 0..<12 { group.addTask { try await client.set("\(prefix):\(index)", to: "v") } }
            try await group.waitForAll()
        }
        let keys = try await client.send("DBSIZE").integer
        XCTAssertEqual(keys, 12)
    }

    func testShutDownFailsQueuedWork() async throws {
        let server = try startRedis()
        let client = try RedisClient(url: server.url)
        try await client.ping()
        client.shutDown()
        do {
            try await client.ping()
            XCTFail("a shut-down client must refuse work")
        } catch let error as RedisError {
            guard case .closed = error else { return XCTFail("\(error)") }
        }
    }

    func testScriptOnThePool() async throws {
        let server = try startRedis()
        let client = try makeClient(server)
        let script = RedisScript("return {KEYS[1], ARGV[1]}")
        let reply = try await client.run(script, keys: [key()], arguments: ["arg"])
        XCTAssertEqual(reply, .array([.bulk(Array(key().utf8)), .bulk(Array("arg".utf8))]))
    }
}
