import BatonRedis
import BatonTestSupport
import XCTest

final class RedisConnectionTests: RedisTestCase {
    func testEveryReplyType() throws {
        let server = try startRedis()
        let connection = try RedisConnection(url: server.url)
        let k = key()
        XCTAssertEqual(try connection.send(RedisCommand("PING")), .status("PONG"))
        XCTAssertEqual(try connection.send(RedisCommand("SET", k, "v")), .status("OK"))
        XCTAssertEqual(try connection.send(RedisCommand("GET", k)), .bulk(Array("v".utf8)))
        XCTAssertEqual(try connection.send(RedisCommand("INCRBY", k + "n", -5)), .integer(-5))
        XCTAssertEqual(try connection.send(RedisCommand("GET", k + "missing")), .null)
        XCTAssertEqual(try connection.send(RedisCommand("RPUSH", k + "l", "a", "b")), .integer(2))
        XCTAssertEqual(try connection.send(RedisCommand("LRANGE", k + "l", 0, -1)), .array([.bulk([97]), .bulk([98])]))
        XCTAssertEqual(try connection.send(RedisCommand("LRANGE", k + "none", 0, -1)), .array([]))
        // Nested arrays and an error inside an array (EXEC of a failing command).
        XCTAssertEqual(
            try connection.send(RedisCommand("EVAL", "return {1, {2, 'x'}, false}", 0)),
            .array([.integer(1), .array([.integer(2), .bulk([120])]), .null]))
        XCTAssertEqual(
            try connection.pipeline([RedisCommand("MULTI"), RedisCommand("INCR", k), RedisCommand("EXEC")]),
            [.status("OK"), .status("QUEUED"), .array([.error("ERR value is not an integer or out of range")])])
        // A top-level error reply is thrown with its text verbatim and the command named.
        XCTAssertThrowsError(try connection.send(RedisCommand("LPUSH", k, "x"))) { error in
            guard case .server(let serverError) = error as? RedisError else { return XCTFail("\(error)") }
            XCTAssertEqual(serverError.code, "WRONGTYPE")
            XCTAssertEqual(serverError.command, "LPUSH")
            XCTAssertTrue(
                serverError.message.hasPrefix("WRONGTYPE Operation against a key holding the wrong kind of value"))
        }
        // The connection is still usable after an error reply.
        XCTAssertEqual(try connection.send(RedisCommand("PING")), .status("PONG"))
    }

    func testBinaryValuesWithNULBytesAndOneMebibyte() throws {
        let server = try startRedis()
        let connection = try RedisConnection(url: server.url)
        let binaryKey: [UInt8] = [0x6b, 0x00, 0x0d, 0x0a, 0xff]
        let binaryValue: [UInt8] = [0x00, 0x01, 0x00, 0x0d, 0x0a, 0x24, 0xff, 0x00]
        try connection.send(RedisCommand("SET", binaryKey, binaryValue))
        XCTAssertEqual(try connection.send(RedisCommand("GET", binaryKey)), .bulk(binaryValue))
        XCTAssertEqual(try connection.send(RedisCommand("STRLEN", binaryKey)), .integer(8))

        var big = [UInt8](repeating: 0, count: 1 << 20)
        for index in big.indices { big[index] = UInt8(truncatingIfNeeded: index &* 31 &+ index >> 8) }
        try connection.send(RedisCommand("SET", key("big"), big))
        XCTAssertEqual(try connection.send(RedisCommand("GET", key("big"))).bytes, big)

        XCTAssertEqual(try connection.send(RedisCommand("SET", key("empty"), "")), .status("OK"))
        XCTAssertEqual(try connection.send(RedisCommand("GET", key("empty"))), .bulk([]))
    }

    func testPipelineOfAThousandCommands() throws {
        let server = try startRedis()
        let connection = try RedisConnection(url: server.url)
        let k = key()
        let commands = (0..<1000).map { RedisCommand("RPUSH", k, "item-\($0)") }
        let replies = try connection.pipeline(commands)
        XCTAssertEqual(replies.count, 1000)
        XCTAssertEqual(replies, (1...1000).map { .integer(Int64($0)) })
        let gets = try connection.pipeline((0..<1000).map { RedisCommand("LINDEX", k, $0) })
        XCTAssertEqual(gets.map(\.string), (0..<1000).map { "item-\($0)" })
        // An error in the middle comes back in place; the rest still succeed.
        let mixed = try connection.pipeline([RedisCommand("PING"), RedisCommand("INCR", k), RedisCommand("LLEN", k)])
        XCTAssertEqual(mixed[0], .status("PONG"))
        XCTAssertTrue(mixed[1].errorMessage?.hasPrefix("WRONGTYPE") == true)
        XCTAssertEqual(mixed[2], .integer(1000))
    }

    func testScriptsRunBySHAAndSurviveScriptFlush() throws {
        let server = try startRedis()
        let connection = try RedisConnection(url: server.url)
        let script = RedisScript("return redis.call('INCRBY', KEYS[1], ARGV[1])")
        // The locally computed SHA-1 is the one Redis computes.
        XCTAssertEqual(try connection.send(RedisCommand("SCRIPT", "LOAD", script.source)).string, script.sha1)
        XCTAssertEqual(try connection.run(script, keys: [key()], arguments: [5]), .integer(5))
        try connection.send(RedisCommand("SCRIPT", "FLUSH"))
        XCTAssertEqual(try connection.send(RedisCommand("SCRIPT", "EXISTS", script.sha1)), .array([.integer(0)]))
        XCTAssertEqual(try connection.run(script, keys: [key()], arguments: [5]), .integer(10))
        // The fallback EVAL cached it again.
        XCTAssertEqual(try connection.send(RedisCommand("SCRIPT", "EXISTS", script.sha1)), .array([.integer(1)]))
        // A script's own error is thrown as a server error.
        XCTAssertThrowsError(try connection.run(RedisScript("return redis.error_reply('BATON custom failure')"))) {
            error in
            XCTAssertEqual((error as? RedisError)?.serverError?.message, "BATON custom failure")
        }
    }

    func testRequirePassAndACLUser() throws {
        let server = try startRedis(arguments: ["--requirepass", "right-password"])
        // No password: connecting works (nothing to send), the first command is refused.
        let anonymous = try RedisConnection(url: server.url)
        XCTAssertThrowsError(try anonymous.send(RedisCommand("GET", "x"))) { error in
            XCTAssertEqual((error as? RedisError)?.serverError?.code, "NOAUTH")
            XCTAssertTrue(String(describing: error).contains("user name and password"))
        }
        XCTAssertThrowsError(try RedisConnection(url: server.url(password: "wrong-password"))) { error in
            XCTAssertEqual((error as? RedisError)?.serverError?.code, "WRONGPASS")
            XCTAssertEqual((error as? RedisError)?.serverError?.command, "AUTH")
            XCTAssertFalse(String(describing: error).contains("wrong-password"))
        }
        let admin = try RedisConnection(url: server.url(password: "right-password"))
        XCTAssertEqual(try admin.send(RedisCommand("PING")), .status("PONG"))

        // An ACL user that may read `token` keys only.
        try admin.send(RedisCommand("ACL", "SETUSER", "reader", "on", ">reader-pw", "~*:token", "+get", "+ping"))
        let reader = try RedisConnection(url: server.url(username: "reader", password: "reader-pw"))
        try admin.send(RedisCommand("SET", "svc:token", "t"))
        XCTAssertEqual(try reader.send(RedisCommand("GET", "svc:token")).string, "t")
        XCTAssertThrowsError(try reader.send(RedisCommand("SET", "svc:token", "x"))) { error in
            XCTAssertEqual((error as? RedisError)?.serverError?.code, "NOPERM")
        }
        XCTAssertThrowsError(try reader.send(RedisCommand("GET", "svc:secret"))) { error in
            XCTAssertEqual((error as? RedisError)?.serverError?.code, "NOPERM")
        }
        XCTAssertThrowsError(try RedisConnection(url: server.url(username: "reader", password: "nope"))) { error in
            XCTAssertEqual((error as? RedisError)?.serverError?.code, "WRONGPASS")
        }
    }

    func testSelectDatabase() throws {
        let server = try startRedis()
        let db0 = try RedisConnection(url: server.url(database: 0))
        let db5 = try RedisConnection(url: server.url(database: 5))
        try db5.send(RedisCommand("SET", key(), "in-five"))
        XCTAssertEqual(try db0.send(RedisCommand("EXISTS", key())), .integer(0))
        XCTAssertEqual(try db5.send(RedisCommand("GET", key())).string, "in-five")
    }

    func testConnectionRefusedNamesTheAddress() throws {
        let port = try freeLoopbackPort()
        let started = ContinuousClock.now
        XCTAssertThrowsError(
            try RedisConnection(
                url: "redis://127.0.0.1:\(port)",
                options: .init(
                    reconnect: .init(
                        initialDelay: .milliseconds(10), maxDelay: .milliseconds(50), giveUpAfter: .milliseconds(300)))
            )
        ) { error in
            guard case .connectionRefused(let address) = error as? RedisError else { return XCTFail("\(error)") }
            XCTAssertEqual(address, "127.0.0.1:\(port)")
            XCTAssertTrue(String(describing: error).contains("127.0.0.1:\(port)"))
        }
        // The reconnect policy bounded how long it kept trying.
        XCTAssertLessThan(ContinuousClock.now - started, .seconds(2))
    }

    func testConnectFailuresAreClassifiedByErrno() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent(
            "baton-\(name.filter(\.isLetter))-\(getpid())")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        // No socket file: ENOENT, a connect failure that is not a refusal.
        let missing = directory.appendingPathComponent("missing.sock").path
        XCTAssertThrowsError(try RedisConnection(url: "unix://\(missing)", options: .init(reconnect: .never))) {
            error in
            guard case .connectionFailed(_, let reason) = error as? RedisError else { return XCTFail("\(error)") }
            XCTAssertFalse(reason.isEmpty)
        }
        // A socket file nobody listens on: ECONNREFUSED.
        let stale = directory.appendingPathComponent("stale.sock").path
        let descriptor = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &address.sun_path) { buffer in
            for (index, byte) in stale.utf8.enumerated() where index < buffer.count - 1 { buffer[index] = byte }
        }
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                bind(descriptor, $0, socklen_t(MemoryLayout<sockaddr_un>.size))
            }
        }
        XCTAssertEqual(bound, 0)
        close(descriptor)  // bound, never listening: connecting is refused
        XCTAssertThrowsError(try RedisConnection(url: "unix://\(stale)", options: .init(reconnect: .never))) { error in
            guard case .connectionRefused = error as? RedisError else { return XCTFail("\(error)") }
        }
    }

    func testCommandTimeoutAgainstAStalledServer() throws {
        let server = try startRedis()
        let stalling = try RedisConnection(url: server.url)
        let victim = try RedisConnection(url: server.url, options: .init(commandTimeout: .milliseconds(200)))
        XCTAssertEqual(try victim.send(RedisCommand("PING")), .status("PONG"))
        let sleeper = Thread {
            _ = try? stalling.send(RedisCommand("DEBUG", "SLEEP", "1.5"), timeout: .some(.seconds(5)))
        }
        sleeper.start()
        Thread.sleep(forTimeInterval: 0.2)
        let started = ContinuousClock.now
        XCTAssertThrowsError(try victim.send(RedisCommand("GET", key()))) { error in
            guard case .timeout(let address, _, let after) = error as? RedisError else { return XCTFail("\(error)") }
            XCTAssertEqual(address, "127.0.0.1:\(server.port)")
            XCTAssertEqual(after, .milliseconds(200))
        }
        let waited = ContinuousClock.now - started
        XCTAssertGreaterThanOrEqual(waited, .milliseconds(150))
        XCTAssertLessThan(waited, .seconds(1.2), "the timeout must fire long before DEBUG SLEEP ends")
        // The timed-out connection was dropped; the next command reconnects (once the server is
        // awake) and cannot see the stale reply to the GET.
        Thread.sleep(forTimeInterval: 1.5)
        XCTAssertFalse(victim.isConnected)
        try victim.send(RedisCommand("SET", key(), "fresh"))
        XCTAssertEqual(try victim.send(RedisCommand("GET", key())).string, "fresh")
        XCTAssertEqual(victim.generation, 2)
    }

    func testRecoversAfterServerRestart() throws {
        let server = try startRedis(persistent: true)
        let connection = try RedisConnection(url: server.url)
        try connection.send(RedisCommand("SET", key(), "kept"))
        try connection.send(RedisCommand("SAVE"))
        try server.restart()
        // The idle connection was closed by the restart: that is noticed before sending, so the
        // command is sent once, on a new connection, and succeeds.
        XCTAssertEqual(try connection.send(RedisCommand("GET", key())).string, "kept")
        XCTAssertEqual(connection.generation, 2)
    }

    func testReconnectsWithBackoffWhileTheServerIsDown() throws {
        let server = try startRedis()
        let connection = try RedisConnection(
            url: server.url, options: .init(reconnect: .init(giveUpAfter: .seconds(5))))
        server.stop()
        let restarter = Thread {
            Thread.sleep(forTimeInterval: 0.5)
            try? server.startAgain()
        }
        restarter.start()
        XCTAssertEqual(try connection.send(RedisCommand("PING")), .status("PONG"))
    }

    func testCommandInFlightWhenTheConnectionDropsIsNotResent() throws {
        let server = try startRedis()
        let blocked = try RedisConnection(url: server.url)
        let admin = try RedisConnection(url: server.url)
        let blockedID = try XCTUnwrap(blocked.send(RedisCommand("CLIENT", "ID")).integer)
        let list = key("list")
        let outcome = UncheckedResult()
        let waiter = Thread {
            outcome.set(Result { try blocked.send(RedisCommand("BLPOP", list, 5), timeout: .some(.seconds(10))) })
        }
        waiter.start()
        Thread.sleep(forTimeInterval: 0.3)
        XCTAssertEqual(try admin.send(RedisCommand("CLIENT", "KILL", "ID", blockedID)), .integer(1))
        let result = try XCTUnwrap(outcome.wait(seconds: 5))
        XCTAssertThrowsError(try result.get()) { error in
            guard case .connectionLost(_, let command, _) = error as? RedisError else { return XCTFail("\(error)") }
            XCTAssertEqual(command, "BLPOP")
        }
        // Had the BLPOP been re-sent on a new connection, it would take this element.
        try admin.send(RedisCommand("RPUSH", list, "payload"))
        Thread.sleep(forTimeInterval: 0.2)
        XCTAssertEqual(try admin.send(RedisCommand("LLEN", list)), .integer(1))
        XCTAssertEqual(try blocked.send(RedisCommand("PING")), .status("PONG"), "the next command reconnects")
    }
}

/// A result handed from a test thread to the test.
final class UncheckedResult: @unchecked Sendable {
    private let condition = NSCondition()
    private var result: Result<RESPValue, any Error>?

    func set(_ result: Result<RESPValue, any Error>) {
        condition.lock()
        self.result = result
        condition.broadcast()
        condition.unlock()
    }

    func wait(seconds: Double) -> Result<RESPValue, any Error>? {
        condition.lock()
        defer { condition.unlock() }
        let deadline = Date().addingTimeInterval(seconds)
        while result == nil && condition.wait(until: deadline) {}
        return result
    }
}
