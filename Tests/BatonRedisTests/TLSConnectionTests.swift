import BatonRedis
import BatonTestSupport
import XCTest

/// `rediss://` against Debian's redis-server with `--tls-port` and certificates made by the test.
final class TLSConnectionTests: XCTestCase {
    private var servers: [RedisServerProcess] = []

    override func tearDown() {
        servers.forEach { $0.stop() }
        servers = []
    }

    private func startTLS(_ settings: RedisServerProcess.TLSSettings = .init()) throws -> RedisServerProcess {
        let server = try RedisServerProcess.start(tls: settings)
        servers.append(server)
        return server
    }

    /// The error of one `PING` over `url`, which must fail.
    private func failure(of url: String, file: StaticString = #filePath, line: UInt = #line) async throws -> String {
        let client = try RedisClient(
            url: url, options: .init(connection: .init(connectTimeout: .seconds(2), reconnect: .never)))
        defer { client.shutDown() }
        do {
            _ = try await client.send("PING")
            XCTFail("PING over \(url) should have failed", file: file, line: line)
            return ""
        } catch {
            return String(describing: error)
        }
    }

    func testCommandsPipelinesPoolAndPubSubOverTLS() async throws {
        let server = try startTLS()
        let client = try RedisClient(url: server.tlsURL())
        defer { client.shutDown() }
        let pong = try await client.send("PING")
        XCTAssertEqual(pong, .status("PONG"))
        let large = [UInt8](repeating: 7, count: 1_000_000)
        try await withThrowingTaskGroup(of: Void.self) { group in
            for task in 0..<8 {
                group.addTask {
                    for index in 0..<50 {
                        let value = index == 0 ? large : Array("\(task)-\(index)".utf8)
                        try await client.set("k:\(task):\(index)", to: value)
                        let read = try await client.get("k:\(task):\(index)")
                        XCTAssertEqual(read, value)
                    }
                }
            }
            try await group.waitForAll()
        }
        let pooled = try await client.withConnection { try $0.send(RedisCommand("DBSIZE")).integer }
        XCTAssertEqual(pooled, 400)
        let subscription = try RedisSubscription(endpoint: client.endpoint)
        try subscription.subscribe(["news"])
        _ = try await client.publish("hello", to: "news")
        var received: PubSubMessage?
        for _ in 0..<20 where received == nil {
            if case .message(let message)? = try subscription.next(timeout: .milliseconds(500)) { received = message }
        }
        XCTAssertEqual(received?.text, "hello")
    }

    func testMutualTLS() async throws {
        let server = try startTLS(.init(clientAuthentication: .required))
        let client = try RedisClient(url: server.tlsURL())
        defer { client.shutDown() }
        let pong = try await client.send("PING")
        XCTAssertEqual(pong, .status("PONG"))

        let certificates = try TestCertificates.shared()
        let refused = try await failure(of: server.tlsURL(TLSURLParameters(caFile: certificates.caCertificate)))
        XCTAssertTrue(refused.contains("127.0.0.1:\(server.port)"), refused)
        XCTAssertTrue(refused.contains("tls_cert_file"), "says what to set: \(refused)")
    }

    func testAnUnknownCAIsRefusedWithTheReason() async throws {
        let server = try startTLS()
        let certificates = try TestCertificates.shared()
        let message = try await failure(of: server.tlsURL(TLSURLParameters(caFile: certificates.otherCACertificate)))
        XCTAssertTrue(message.contains("127.0.0.1:\(server.port)"), message)
        XCTAssertTrue(message.contains("certificate verification failed"), message)
        XCTAssertTrue(message.contains("tls_ca_file"), message)
    }

    func testAnExpiredCertificateIsRefusedUnlessInsecureOnLoopback() async throws {
        let server = try startTLS(.init(serverCertificate: .expired))
        let message = try await failure(of: server.tlsURL())
        XCTAssertTrue(message.contains("certificate has expired"), message)
        XCTAssertTrue(message.contains("127.0.0.1:\(server.port)"), message)
        let insecure = try RedisClient(url: server.tlsURL(TLSURLParameters(insecure: true)))
        defer { insecure.shutDown() }
        let pong = try await insecure.send("PING")
        XCTAssertEqual(pong, .status("PONG"))
    }

    func testAHostNameMismatchIsRefusedAndTLSServerNameOverridesTheName() async throws {
        let server = try startTLS(.init(serverCertificate: .wrongName))
        let certificates = try TestCertificates.shared()
        let message = try await failure(of: server.tlsURL())
        XCTAssertTrue(message.contains("mismatch"), message)
        XCTAssertTrue(message.contains("tls_server_name"), message)
        let named = try RedisClient(
            url: server.tlsURL(TLSURLParameters(caFile: certificates.caCertificate, serverName: "wrong.example")))
        defer { named.shutDown() }
        let pong = try await named.send("PING")
        XCTAssertEqual(pong, .status("PONG"))
    }

    func testPlainAndTLSMixUpsSayWhatToUse() async throws {
        let tlsServer = try startTLS()
        let plainToTLS = try await failure(of: "redis://127.0.0.1:\(tlsServer.port)")
        XCTAssertTrue(plainToTLS.contains("rediss://"), plainToTLS)

        let plain = try RedisServerProcess.start()
        servers.append(plain)
        let certificates = try TestCertificates.shared()
        let tlsToPlain = try await failure(
            of: "rediss://127.0.0.1:\(plain.port)?tls_ca_file=\(certificates.caCertificate)")
        XCTAssertTrue(tlsToPlain.contains("plain port") || tlsToPlain.contains("redis://"), tlsToPlain)
    }

    func testMissingTLSFilesAreNamed() async throws {
        let server = try startTLS()
        let message = try await failure(of: server.tlsURL(TLSURLParameters(caFile: "/nonexistent/ca.pem")))
        XCTAssertTrue(message.contains("tls_ca_file '/nonexistent/ca.pem'"), message)
    }
}
