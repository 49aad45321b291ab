import BatonRedis
import BatonSupport
import BatonTestSupport
import Foundation
import XCTest

/// `redis-sentinel://` against one master, two replicas and three real `redis-sentinel`
/// processes: discovery, authentication, failover followed by every kind of connection, Sentinels
/// down, and the old master coming back as a replica.
final class SentinelClientTests: XCTestCase {
    private var group: RedisSentinelGroup?

    override func tearDown() {
        group?.stop()
        group = nil
        unsetenv(BatonDefaults.sentinelPasswordVariable)
    }

    private func startGroup(dataPassword: String? = nil, sentinelPassword: String? = nil) async throws
        -> RedisSentinelGroup
    {
        let started = try await RedisSentinelGroup.start(dataPassword: dataPassword, sentinelPassword: sentinelPassword)
        group = started
        if let sentinelPassword { setenv(BatonDefaults.sentinelPasswordVariable, sentinelPassword, 1) }
        return started
    }

    private func logs(_ group: RedisSentinelGroup) -> String {
        group.logs().map { "--- \($0.name)\n\($0.log.suffix(3000))" }.joined(separator: "\n")
    }

    /// The port of the server a client's commands reach.
    private func port(reachedBy client: RedisClient) async throws -> Int {
        let info = try await client.send("INFO", "server").string ?? ""
        let line = info.split(whereSeparator: \.isNewline).first { $0.hasPrefix("tcp_port:") } ?? ""
        return Int(line.dropFirst("tcp_port:".count)) ?? -1
    }

    func testCommandsReachTheMasterTheSentinelsNameWithEveryonesCredentials() async throws {
        let group = try await startGroup(dataPassword: "data-pw", sentinelPassword: "sentinel-pw")
        let client = try RedisClient(url: group.url(password: "data-pw"))
        defer { client.shutDown() }
        try await client.set("k", to: "v")
        let reached = try await port(reachedBy: client)
        XCTAssertEqual(reached, try group.currentMasterPort())
        let role = try await client.send("ROLE").array?.first?.string
        XCTAssertEqual(role, "master")
        let pooled = try await client.withConnection { try $0.send(RedisCommand("GET", "k")).string }
        XCTAssertEqual(pooled, "v")
    }

    func testWrongSentinelCredentialsOrMasterNameAreReportedPerSentinel() async throws {
        let group = try await startGroup(sentinelPassword: "sentinel-pw")
        setenv(BatonDefaults.sentinelPasswordVariable, "wrong", 1)
        let options = RedisClientOptions(connection: .init(reconnect: .never))
        let wrongPassword = try RedisClient(url: group.url, options: options)
        defer { wrongPassword.shutDown() }
        do {
            _ = try await wrongPassword.send("PING")
            XCTFail("the Sentinels require another password")
        } catch {
            let message = "\(error)"
            XCTAssertTrue(message.contains("no Sentinel named a master"), message)
            for port in group.sentinelPorts { XCTAssertTrue(message.contains("127.0.0.1:\(port)"), message) }
            XCTAssertFalse(message.contains("sentinel-pw") || message.contains("wrong"), message)
        }
        setenv(BatonDefaults.sentinelPasswordVariable, "sentinel-pw", 1)
        let unknownName = try RedisClient(
            url: "redis-sentinel://127.0.0.1:\(group.sentinelPorts[0])#no-such-master", options: options)
        defer { unknownName.shutDown() }
        do {
            _ = try await unknownName.send("PING")
            XCTFail("no Sentinel monitors that name")
        } catch {
            XCTAssertTrue("\(error)".contains("does not monitor a master named 'no-such-master'"), "\(error)")
        }
    }

    /// kill -9 of the master: the pipelined connection, the pool and a subscription all follow
    /// the master Sentinel promotes.
    func testAFailoverIsFollowedByEveryConnection() async throws {
        let group = try await startGroup()
        let client = try RedisClient(url: group.url)
        defer { client.shutDown() }
        let subscription = try RedisSubscription(endpoint: client.endpoint)
        try subscription.subscribe(["after-failover"])
        try await client.set("before", to: "1")
        let oldMaster = try group.killMaster()
        let killed = ContinuousClock.now
        let recovered = try await eventually(
            "a write succeeds after the failover", timeout: .seconds(60), diagnostics: { self.logs(group) }
        ) { () async -> Duration? in
            (try? await client.set("after", to: "1")) == nil ? nil : ContinuousClock.now - killed
        }
        let newMaster = try await group.waitForFailover(awayFrom: oldMaster)
        try await expectCommandsReachTheCurrentMaster(client, group, notOn: oldMaster, promoted: newMaster)
        let pooled = try await client.withConnection { try $0.send(RedisCommand("SET", "pooled", "1")) }
        XCTAssertEqual(pooled, .status("OK"))
        print("kill -9 of the master to the first successful write: \(recovered.shortDescription)")

        // The subscription was on the dead master: it renews itself on the new one.
        var renewed = false
        var received: PubSubMessage?
        try await eventually("the subscription hears a message on the new master", timeout: .seconds(30)) {
            _ = try? await client.publish("hello", to: "after-failover")
            while let event = try? subscription.next(timeout: .milliseconds(200)) {
                switch event {
                case .resubscribed: renewed = true
                case .message(let message): received = message
                }
            }
            return received != nil
        }
        XCTAssertTrue(renewed)
        XCTAssertEqual(received?.text, "hello")
    }

    /// One Sentinel down: discovery asks the next. All down: a client that knows the master keeps
    /// working; a new one is told which Sentinels failed; when they return, discovery works again.
    func testSentinelsDownAndBack() async throws {
        let group = try await startGroup()
        group.stopSentinel(0)
        let client = try RedisClient(url: group.url)
        defer { client.shutDown() }
        try await client.set("one-down", to: "1")

        group.stopAllSentinels()
        try await client.set("all-down-known-master", to: "1")
        // A different Sentinel list is a new discovery (nothing known yet).
        let reversed =
            "redis-sentinel://" + group.sentinelPorts.reversed().map { "127.0.0.1:\($0)" }.joined(separator: ",")
            + "#\(group.masterName)"
        let fresh = try RedisClient(url: reversed, options: .init(connection: .init(reconnect: .never)))
        defer { fresh.shutDown() }
        do {
            _ = try await fresh.send("PING")
            XCTFail("no Sentinel is up")
        } catch {
            XCTAssertTrue("\(error)".contains("no Sentinel named a master"), "\(error)")
        }
        try await group.startAllSentinels()
        try await eventually("discovery works again", timeout: .seconds(30), diagnostics: { self.logs(group) }) {
            (try? await fresh.send("PING")) == .status("PONG")
        }
    }

    /// The killed master returns and Sentinel makes it a replica: writes sent to it directly
    /// are refused with READONLY, while Baton's writes keep reaching the new master.
    func testTheOldMasterReturnsAsAReplicaAndBatonKeepsWritingToTheNewOne() async throws {
        let group = try await startGroup()
        let client = try RedisClient(url: group.url)
        defer { client.shutDown() }
        try await client.set("k", to: "0")
        let oldMaster = try group.killMaster()
        let newMaster = try await group.waitForFailover(awayFrom: oldMaster)
        try await group.restartOldMaster()
        let direct = try RedisClient(url: "redis://127.0.0.1:\(oldMaster)")
        defer { direct.shutDown() }
        do {
            try await direct.set("k", to: "stale")
            XCTFail("the old master is a replica now")
        } catch let error as RedisError {
            XCTAssertEqual(error.serverError?.code, "READONLY")
        }
        try await eventually("Baton writes to the new master", timeout: .seconds(30)) {
            (try? await client.set("k", to: "1")) != nil
        }
        try await expectCommandsReachTheCurrentMaster(client, group, notOn: oldMaster, promoted: newMaster)
    }

    /// Commands reach the master the Sentinels name now (on a loaded machine they may have
    /// failed over once more since `promoted`), never `oldMaster`.
    private func expectCommandsReachTheCurrentMaster(
        _ client: RedisClient, _ group: RedisSentinelGroup, notOn oldMaster: Int, promoted: Int
    ) async throws {
        var last = (reached: -1, named: -1)
        try await eventually(
            "commands reach the master the Sentinels name", timeout: .seconds(30),
            diagnostics: {
                "old \(oldMaster), promoted \(promoted), last \(last), data nodes \(group.dataPorts)\n\(self.logs(group))"
            }
        ) {
            last = (try await port(reachedBy: client), try group.currentMasterPort())
            return last.reached == last.named
        }
        XCTAssertNotEqual(last.reached, oldMaster)
    }
}
