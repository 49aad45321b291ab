import BatonLock
import BatonRedis
import BatonTestSupport
import Foundation
import XCTest

/// The lock across separate `baton` processes: mutual exclusion, fencing order, no starvation,
/// crashed and paused holders.
final class LockProcessTests: XCTestCase {
    private func startRedis() throws -> RedisServerProcess {
        let server = try RedisServerProcess.start()
        addTeardownBlock { server.stop() }
        return server
    }

    func testEightProcessesTwoHundredCriticalSectionsEach() throws {
        let server = try startRedis()
        let journal = "test:{contention}:journal"
        let processes = 8
        let iterations = 200
        let started = Date()
        let children = try (0..<processes).map { _ in
            try BatonExecutable.start([
                "lock", "selftest", "contention", "--iterations", String(iterations),
                "--journal", journal, "--redis", server.url, "--prefix", "test", "--wait", "120s",
            ])
        }
        defer { children.forEach { try? FileManager.default.removeItem(at: $0.output) } }
        var finishTimes: [Double] = []
        for (child, output) in children {
            XCTAssertTrue(child.waitForExit(timeout: 180), "a process starved or hung")
            finishTimes.append(Date().timeIntervalSince(started))
            XCTAssertEqual(child.terminationStatus, 0, (try? String(contentsOf: output, encoding: .utf8)) ?? "")
        }

        let redis = try RedisConnection(url: server.url)
        let entries = try XCTUnwrap(redis.send(RedisCommand("LRANGE", journal, 0, -1)).array).compactMap(\.string)
        XCTAssertEqual(entries.count, processes * iterations * 2)
        var lastFence: Int64 = 0
        var sectionsPerPID: [String: Int] = [:]
        for pair in stride(from: 0, to: entries.count - 1, by: 2) {
            let enter = entries[pair].split(separator: " ")
            let exit = entries[pair + 1].split(separator: " ")
            // No overlap: every "enter" is followed by the "exit" of the same process and fence.
            XCTAssertEqual(enter.first, "enter", "at \(pair): \(entries[pair])")
            XCTAssertEqual(exit.first, "exit", "at \(pair + 1): \(entries[pair + 1])")
            XCTAssertEqual(enter.dropFirst(), exit.dropFirst(), "critical sections overlap at \(pair)")
            let fence = Int64(enter[2]) ?? 0
            XCTAssertGreaterThan(fence, lastFence, "fences must strictly increase in entry order")
            lastFence = fence
            sectionsPerPID[String(enter[1]), default: 0] += 1
        }
        XCTAssertEqual(sectionsPerPID.count, processes)
        XCTAssertTrue(sectionsPerPID.values.allSatisfy { $0 == iterations }, "\(sectionsPerPID)")
        print(
            "contention: \(processes) processes x \(iterations) sections in \(String(format: "%.2f", finishTimes.max() ?? 0)) s; first finished at \(String(format: "%.2f", finishTimes.min() ?? 0)) s"
        )
    }

    func testKilledHolderIsReplacedWithinItsTTL() async throws {
        let server = try startRedis()
        let (holder, output) = try BatonExecutable.start([
            "lock", "run", "crash", "--ttl", "2s", "--redis", server.url, "--prefix", "test", "--", "sleep", "4",
        ])
        defer { try? FileManager.default.removeItem(at: output) }
        let redis = try RedisConnection(url: server.url)
        try waitUntil("the holder takes the lock") {
            try redis.send(RedisCommand("EXISTS", "test:{crash}:lock")) == .integer(1)
        }
        let crashedFence = try XCTUnwrap(redis.send(RedisCommand("GET", "test:{crash}:fence")).integer)
        holder.signal(SIGKILL)
        holder.waitForExit(timeout: 5)
        let killedAt = ContinuousClock.now

        let client = try RedisClient(url: server.url)
        let service = try LockService(client: client, prefix: "test")
        defer {
            service.shutDown()
            client.shutDown()
        }
        let lease = try await service.lock("crash").acquire(timeout: .seconds(10))
        let waited = ContinuousClock.now - killedAt
        XCTAssertLessThan(waited, .milliseconds(2000 + 300), "TTL plus a small margin")
        XCTAssertGreaterThan(lease.fence.value, crashedFence)
        try await lease.release()
    }

    func testPausedHolderIsToldItLostAndItsFencedWriteIsRejected() async throws {
        let server = try startRedis()
        let state = "test:{paused}:state"
        // On SIGTERM (sent when baton learns the lock is lost) the command still tries to write
        // with its fencing token, as a careless program would.
        let scratch = FileManager.default.temporaryDirectory.appendingPathComponent("paused-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: scratch, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: scratch) }
        let resultFile = scratch.appendingPathComponent("result").path
        let writer = scratch.appendingPathComponent("fenced-write.sh")
        try """
        redis-cli -p \(server.port) EVAL "local n = tonumber(redis.call('HGET', KEYS[1], 'fence') or '0') if tonumber(ARGV[1]) < n then return 0 end redis.call('HSET', KEYS[1], 'fence', ARGV[1], 'value', ARGV[2]) return 1" 1 \(state) "$BATON_LOCK_FENCE" stale > \(resultFile)
        """.write(to: writer, atomically: true, encoding: .utf8)
        let script = "trap 'sh \(writer.path); exit 1' TERM; sleep 30 & wait"
        let (holder, output) = try BatonExecutable.start(
            [
                "lock", "run", "paused", "--ttl", "1s", "--redis", server.url, "--prefix", "test", "--", "sh", "-c",
                script,
            ])
        defer { try? FileManager.default.removeItem(at: output) }
        let redis = try RedisConnection(url: server.url)
        try waitUntil("the holder takes the lock") {
            try redis.send(RedisCommand("EXISTS", "test:{paused}:lock")) == .integer(1)
        }

        holder.signal(SIGSTOP)
        let client = try RedisClient(url: server.url)
        let service = try LockService(client: client, prefix: "test")
        defer {
            service.shutDown()
            client.shutDown()
        }
        let lock = try service.lock("paused")
        let successor = try await lock.acquire(timeout: .seconds(5))
        let wrote = try await lock.fencedSet(state, value: "successor", fence: successor.fence)
        XCTAssertTrue(wrote)
        holder.signal(SIGCONT)

        XCTAssertTrue(holder.waitForExit(timeout: 10))
        XCTAssertEqual(holder.terminationStatus, 76, "exit status for a lost lock")
        let log = try String(contentsOf: output, encoding: .utf8)
        XCTAssertTrue(log.contains("lost lock 'paused'"), log)
        XCTAssertEqual(
            try String(contentsOfFile: resultFile, encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines),
            "0", "the stale write was rejected")
        XCTAssertEqual(try redis.send(RedisCommand("HGET", state, "value")).string, "successor")
        try await successor.release()
    }

    func testLockRunExitStatusesAndTimeout() throws {
        let server = try startRedis()
        let common = ["--redis", server.url, "--prefix", "test"]
        XCTAssertEqual(
            try BatonExecutable.run(["lock", "run", "codes"] + common + ["--", "sh", "-c", "exit 7"]).status, 7)
        let fence = try BatonExecutable.run(
            ["lock", "run", "codes"] + common + ["--", "sh", "-c", "echo $BATON_LOCK_FENCE"])
        XCTAssertEqual(fence.output.trimmingCharacters(in: .whitespacesAndNewlines), "2")
        XCTAssertEqual(
            try BatonExecutable.run(["lock", "run", "codes"] + common + ["--", "/no/such/program"]).status, 127)

        let (holder, output) = try BatonExecutable.start(["lock", "run", "codes"] + common + ["--", "sleep", "3"])
        defer { try? FileManager.default.removeItem(at: output) }
        let redis = try RedisConnection(url: server.url)
        try waitUntil("the holder takes the lock") {
            try redis.send(RedisCommand("EXISTS", "test:{codes}:lock")) == .integer(1)
        }
        let late = try BatonExecutable.run(["lock", "run", "codes", "--wait", "300ms"] + common + ["--", "true"])
        XCTAssertEqual(late.status, 75)
        XCTAssertTrue(late.output.contains("could not acquire lock 'codes' within"), late.output)
        let status = try BatonExecutable.run(["lock", "status", "codes", "--json"] + common)
        XCTAssertTrue(status.output.contains("\"held\":true"), status.output)
        holder.terminate()
        XCTAssertEqual(holder.terminationStatus, 143, "SIGTERM was forwarded to sleep, whose status passes through")
        let after = try BatonExecutable.run(["lock", "status", "codes"] + common)
        XCTAssertTrue(after.output.contains("free"), "released after the forwarded signal: \(after.output)")
    }

    private func waitUntil(_ what: String, timeout: Double = 10, _ condition: () throws -> Bool) throws {
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            if try condition() { return }
            Thread.sleep(forTimeInterval: 0.02)
        }
        XCTFail("timed out waiting until \(what)")
    }
}
