import BatonRedis
import BatonTestSupport
import XCTest

/// The shared pipelined connection behind ``RedisClient/send(_:timeout:)``: order, large
/// requests and replies, deadlines, and a server that goes away mid-flight.
final class PipelinedConnectionTests: RedisTestCase {
    /// Requests larger than the socket buffers go out in pieces (the outbox) and replies come
    /// back in pieces; interleaved with small ones from other tasks, none is crossed.
    func testLargeAndSmallRequestsFromManyTasksStayInOrder() async throws {
        let server = try startRedis()
        let client = try makeClient(server)
        let prefix = key()
        let large = [UInt8](repeating: UInt8(ascii: "L"), count: 3 * 1024 * 1024)
        try await withThrowingTaskGroup(of: Void.self) { group in
            for task in 0..<8 {
                group.addTask {
                    for index in 0..<40 {
                        let k = "\(prefix):\(task):\(index)"
                        let value = task == 0 && index % 10 == 0 ? large : Array("v\(task)-\(index)".utf8)
                        try await client.set(k, to: value)
                        let read = try await client.get(k)
                        XCTAssertEqual(read, value, k)
                    }
                }
            }
            try await group.waitForAll()
        }
        let connections = try await client.withConnection { try $0.send(RedisCommand("CLIENT", "LIST")).string ?? "" }
        XCTAssertEqual(connections.split(separator: "\n").count, 2, "one shared connection plus the pooled one")
    }

    /// A server that stops answering: every request in flight fails with a timeout once the
    /// oldest one is overdue, and the next request uses a fresh connection.
    func testOverdueRepliesFailEveryRequestInFlightAndTheConnectionIsReplaced() async throws {
        let server = try startRedis()
        let client = try makeClient(server, options: .init(connection: .init(commandTimeout: .milliseconds(400))))
        try await client.ping()
        let admin = try makeClient(server)
        _ = try await admin.send("CLIENT", "PAUSE", 1500, "ALL")
        let started = ContinuousClock.now
        let outcomes = await withTaskGroup(of: (any Error)?.self) { group in
            for _ in 0..<5 {
                group.addTask {
                    do {
                        _ = try await client.send("PING")
                        return nil
                    } catch {
                        return error
                    }
                }
            }
            return await group.reduce(into: [(any Error)?]()) { $0.append($1) }
        }
        XCTAssertLessThan(ContinuousClock.now - started, .milliseconds(1400), "failed by the deadline, not the pause")
        for outcome in outcomes {
            guard case .timeout(_, let operation, let after)? = outcome as? RedisError else {
                return XCTFail("expected a timeout, got \(String(describing: outcome))")
            }
            XCTAssertEqual(after, .milliseconds(400))
            XCTAssertTrue(operation.contains("PING"), operation)
        }
        try await eventually("the client works again after the pause", timeout: .seconds(10)) {
            (try? await client.send("PING")) == .status("PONG")
        }
    }

    /// A server killed with requests in flight: they fail as lost (never resent); the client
    /// reconnects when the server is back.
    func testAServerKilledMidFlightFailsTheRequestsInFlightThenRecovers() async throws {
        // Past this threshold a busy server answers other clients with BUSY: the sign that the
        // script is running.
        let server = try startRedis(arguments: ["--busy-reply-threshold", "100"])
        let client = try makeClient(server)
        try await client.ping()
        let admin = try makeClient(server)
        let slow = Task { try await client.send("EVAL", "while true do end", 0) }
        try await eventually("the script is running", timeout: .seconds(10)) {
            do {
                _ = try await admin.send("PING")
                return false
            } catch let error as RedisError {
                return error.serverError?.code == "BUSY"
            }
        }
        server.kill9()
        do {
            _ = try await slow.value
            XCTFail("the script's connection was killed")
        } catch let error as RedisError {
            XCTAssertTrue(error.isConnectionProblem, "\(error)")
        }
        try server.startAgain()
        try await eventually("the client reconnects", timeout: .seconds(10)) {
            (try? await client.send("PING")) == .status("PONG")
        }
    }
}
