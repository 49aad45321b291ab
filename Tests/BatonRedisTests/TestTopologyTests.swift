import BatonTestSupport
import XCTest

/// The test topologies other tests build on (certificates, TLS servers, a Sentinel group, a
/// cluster), checked with `openssl` and `redis-cli` only, so that they stand whatever Baton's
/// client does.
final class TestTopologyTests: XCTestCase {
    // MARK: - Certificates

    func testCertificatesVerifyAgainstTheTestAuthorityOnly() throws {
        let certificates = try TestCertificates.shared()
        XCTAssertEqual(try TestCertificates.shared().directory, certificates.directory, "made once per process")
        let ca = certificates.caCertificate

        let good = try openssl([
            "verify", "-CAfile", ca, "-verify_hostname", "localhost", certificates.server.certificate,
        ])
        XCTAssertTrue(good.succeeded && good.output.contains(": OK"), good.output)
        let byAddress = try openssl([
            "verify", "-CAfile", ca, "-verify_ip", "127.0.0.1", certificates.server.certificate,
        ])
        XCTAssertTrue(byAddress.succeeded, byAddress.output)

        let expired = try openssl(["verify", "-CAfile", ca, certificates.expiredServer.certificate])
        XCTAssertFalse(expired.succeeded, expired.output)
        XCTAssertTrue(expired.output.contains("certificate has expired"), expired.output)

        let otherCA = try openssl([
            "verify", "-CAfile", certificates.otherCACertificate, certificates.server.certificate,
        ])
        XCTAssertFalse(otherCA.succeeded, otherCA.output)
        XCTAssertTrue(otherCA.output.contains("unable to get local issuer certificate"), otherCA.output)

        let wrongName = try openssl([
            "verify", "-CAfile", ca, "-verify_hostname", "localhost", certificates.wrongNameServer.certificate,
        ])
        XCTAssertFalse(wrongName.succeeded, wrongName.output)
        XCTAssertTrue(wrongName.output.contains("hostname mismatch"), wrongName.output)
        let itsOwnName = try openssl([
            "verify", "-CAfile", ca, "-verify_hostname", "wrong.example", certificates.wrongNameServer.certificate,
        ])
        XCTAssertTrue(itsOwnName.succeeded, itsOwnName.output)

        let client = try openssl(["verify", "-CAfile", ca, "-purpose", "sslclient", certificates.client.certificate])
        XCTAssertTrue(client.succeeded, client.output)
        let keyMatches = try openssl(["x509", "-in", certificates.client.certificate, "-noout", "-pubkey"]).output
        XCTAssertEqual(try openssl(["pkey", "-in", certificates.client.privateKey, "-pubout"]).output, keyMatches)
    }

    func testTLSURLParametersArePercentEncoded() {
        let parameters = TLSURLParameters(
            caFile: "/tmp/a b/c&d=e#f.crt", certificateFile: "/c.crt", keyFile: "/c.key", serverName: "localhost",
            insecure: true)
        XCTAssertEqual(
            parameters.query,
            "tls_ca_file=/tmp/a%20b/c%26d%3De%23f.crt&tls_cert_file=/c.crt&tls_key_file=/c.key"
                + "&tls_server_name=localhost&tls_insecure=true")
        XCTAssertEqual(TLSURLParameters().query, "")
    }

    // MARK: - TLS servers

    func testTLSServerAnswersOverTLSAndRefusesPlainConnections() throws {
        let certificates = try TestCertificates.shared()
        let server = try RedisServerProcess.start(tls: .init())
        defer { server.stop() }

        let overTLS = try RedisCLI.run(
            port: server.port, ["PING"], tls: .init(caCertificate: certificates.caCertificate))
        XCTAssertEqual(overTLS.output.trimmingCharacters(in: .whitespacesAndNewlines), "PONG", server.log)
        let plain = try RedisCLI.run(port: server.port, ["PING"])
        XCTAssertFalse(plain.succeeded && plain.output.contains("PONG"), plain.output)
        let untrusted = try RedisCLI.run(
            port: server.port, ["PING"], tls: .init(caCertificate: certificates.otherCACertificate))
        XCTAssertTrue(untrusted.output.contains("certificate verify failed"), untrusted.output)

        XCTAssertEqual(server.tlsURL(), "rediss://127.0.0.1:\(server.port)?tls_ca_file=\(certificates.caCertificate)")
        XCTAssertEqual(
            server.url(password: "p@ss", database: 2),
            "rediss://:p%40ss@127.0.0.1:\(server.port)/2?tls_ca_file=\(certificates.caCertificate)")
        XCTAssertEqual(
            server.tlsURL(.init(caFile: certificates.otherCACertificate, serverName: "localhost")),
            "rediss://127.0.0.1:\(server.port)?tls_ca_file=\(certificates.otherCACertificate)&tls_server_name=localhost"
        )
    }

    func testServersPresentTheExpiredAndTheWrongNameCertificates() throws {
        let certificates = try TestCertificates.shared()
        let expired = try RedisServerProcess.start(tls: .init(serverCertificate: .expired))
        defer { expired.stop() }
        let wrongName = try RedisServerProcess.start(tls: .init(serverCertificate: .wrongName))
        defer { wrongName.stop() }

        let checked = try RedisCLI.run(
            port: expired.port, ["PING"], tls: .init(caCertificate: certificates.caCertificate))
        XCTAssertTrue(checked.output.contains("certificate verify failed"), checked.output)
        let unchecked = try RedisCLI.run(port: expired.port, ["PING"], tls: .init(insecure: true))
        XCTAssertTrue(unchecked.output.contains("PONG"), unchecked.output)
        let expiredHandshake = try handshake(port: expired.port, hostname: "localhost")
        XCTAssertTrue(expiredHandshake.output.contains("certificate has expired"), expiredHandshake.output)

        let mismatch = try handshake(port: wrongName.port, hostname: "localhost")
        XCTAssertFalse(mismatch.succeeded, mismatch.output)
        XCTAssertTrue(mismatch.output.contains("hostname mismatch"), mismatch.output)
        let matching = try handshake(port: wrongName.port, hostname: "wrong.example")
        XCTAssertTrue(matching.succeeded, matching.output)
    }

    func testMutualTLSServerRefusesAClientWithoutACertificate() throws {
        let certificates = try TestCertificates.shared()
        let server = try RedisServerProcess.start(tls: .init(clientAuthentication: .required))
        defer { server.stop() }

        let anonymous = try RedisCLI.run(
            port: server.port, ["PING"], tls: .init(caCertificate: certificates.caCertificate))
        XCTAssertFalse(anonymous.output.contains("PONG"), anonymous.output)
        let identified = try RedisCLI.run(
            port: server.port, ["PING"],
            tls: .init(
                caCertificate: certificates.caCertificate, certificate: certificates.client.certificate,
                privateKey: certificates.client.privateKey))
        XCTAssertEqual(identified.output.trimmingCharacters(in: .whitespacesAndNewlines), "PONG", identified.output)
        XCTAssertEqual(
            server.tlsURL(),
            "rediss://127.0.0.1:\(server.port)?tls_ca_file=\(certificates.caCertificate)"
                + "&tls_cert_file=\(certificates.client.certificate)&tls_key_file=\(certificates.client.privateKey)")
    }

    // MARK: - Sentinel

    func testSentinelFailoverPromotesAReplicaAndTheOldMasterReturnsAsAReplica() async throws {
        let group = try await RedisSentinelGroup.start(
            masterName: "topology-failover", dataPassword: "data-pw", sentinelPassword: "sentinel-pw")
        let sentinels = group.sentinelPorts.map { "127.0.0.1:\($0)" }.joined(separator: ",")
        XCTAssertEqual(group.url, "redis-sentinel://\(sentinels)#topology-failover")
        XCTAssertEqual(group.url(password: "data-pw"), "redis-sentinel://:data-pw@\(sentinels)#topology-failover")
        XCTAssertEqual(group.sentinelEnvironment, ["BATON_SENTINEL_PASSWORD": "sentinel-pw"])
        let withoutPassword = try RedisCLI.run(
            port: group.sentinelPorts[0], ["SENTINEL", "get-master-addr-by-name", "topology-failover"])
        XCTAssertTrue(withoutPassword.output.contains("NOAUTH"), withoutPassword.output)

        let first = try group.currentMasterPort()
        XCTAssertEqual(first, group.dataPorts[0])
        XCTAssertTrue(try RedisCLI.run(port: first, ["PING"]).output.contains("NOAUTH"))
        for process in group.dataNodes + group.sentinels {
            let pid = try XCTUnwrap(process.pid)
            let arguments = try String(contentsOfFile: "/proc/\(pid)/cmdline", encoding: .utf8)
            XCTAssertFalse(arguments.contains("-pw"), "a password in the arguments of \(process.port): \(arguments)")
        }
        XCTAssertEqual(
            try RedisCLI.reply(port: first, ["SET", "topology:key", "kept"], password: "data-pw") as? String, "OK")
        XCTAssertEqual(try RedisCLI.reply(port: first, ["WAIT", "2", "10000"], password: "data-pw") as? Int, 2)

        let killed = try group.killMaster()
        XCTAssertEqual(killed, first)
        XCTAssertNil(group.dataNode(port: killed)?.pid)
        let promoted = try await group.waitForFailover(awayFrom: killed)
        XCTAssertNotEqual(promoted, killed)
        XCTAssertEqual(try group.replicationInfo(port: promoted)["role"], "master")
        XCTAssertEqual(
            try RedisCLI.reply(port: promoted, ["GET", "topology:key"], password: "data-pw") as? String, "kept")
        for index in group.sentinels.indices {
            XCTAssertEqual(try group.currentMasterPort(askingSentinel: index), promoted)
        }

        try await group.restartOldMaster()
        let info = try group.replicationInfo(port: killed)
        XCTAssertEqual(info["role"], "slave")
        XCTAssertEqual(info["master_port"], String(promoted))
        XCTAssertEqual(
            try RedisCLI.reply(port: killed, ["GET", "topology:key"], password: "data-pw") as? String, "kept")
    }

    func testSentinelsStopAndStartAgain() async throws {
        let group = try await RedisSentinelGroup.start(masterName: "topology-sentinels")
        let master = try group.currentMasterPort()

        group.stopSentinel(0)
        XCTAssertFalse(group.sentinels[0].isRunning)
        XCTAssertThrowsError(try group.currentMasterPort(askingSentinel: 0))
        XCTAssertEqual(try group.currentMasterPort(), master, "asks the first running Sentinel")
        try await group.startSentinel(0)
        XCTAssertEqual(try group.currentMasterPort(askingSentinel: 0), master)

        group.stopAllSentinels()
        XCTAssertThrowsError(try group.currentMasterPort())
        do {
            try await group.waitUntilReady(timeout: .milliseconds(200))
            XCTFail("ready without a Sentinel")
        } catch let error as TopologyError {
            XCTAssertTrue(error.description.contains("no Sentinel is running"), error.description)
            XCTAssertTrue(
                error.description.contains("--- redis-sentinel :\(group.sentinelPorts[2]) log"), error.description)
        }
        try await group.startAllSentinels()
        for index in group.sentinels.indices {
            XCTAssertEqual(try group.currentMasterPort(askingSentinel: index), master)
        }
        try await group.waitUntilReady()
    }

    // MARK: - Cluster

    func testKeySlotFollowsTheClusterSpecification() {
        // The specification's check value: CRC16("123456789") = 0x31C3.
        XCTAssertEqual(RedisClusterProcess.keySlot("123456789"), 0x31C3)
        XCTAssertEqual(RedisClusterProcess.keySlot("{user1000}.following"), RedisClusterProcess.keySlot("user1000"))
        XCTAssertEqual(RedisClusterProcess.keySlot("foo{bar}{zap}"), RedisClusterProcess.keySlot("bar"))
        XCTAssertEqual(RedisClusterProcess.keySlot("foo{{bar}}zap"), RedisClusterProcess.keySlot("{bar"))
        XCTAssertNotEqual(RedisClusterProcess.keySlot("foo{}{bar}"), RedisClusterProcess.keySlot("bar"))
    }

    func testClusterSlotsMigrationsAndResharding() async throws {
        let cluster = try await RedisClusterProcess.start()
        XCTAssertEqual(
            cluster.url, "redis-cluster://" + cluster.ports.prefix(3).map { "127.0.0.1:\($0)" }.joined(separator: ","))
        let nodes = try cluster.nodes()
        XCTAssertEqual(nodes.filter { $0.role == .master }.count, 3)
        XCTAssertEqual(nodes.filter { $0.role == .replica }.count, 3)
        XCTAssertTrue(nodes.allSatisfy { $0.pid != nil && $0.id.count == 40 }, "\(nodes)")

        let keys = ["a", "baton:svc:token", "{svc}:token", "{svc}:lock", "foo{}{bar}", "foo{{bar}}zap", "ünïcödé"]
        for key in keys {
            let slot = try RedisCLI.reply(port: cluster.ports[0], ["CLUSTER", "KEYSLOT", key]) as? Int
            XCTAssertEqual(RedisClusterProcess.keySlot(key), slot, key)
        }

        // One slot, keys included.
        let slot = RedisClusterProcess.keySlot("{svc}:token")
        let source = try cluster.masterPort(forSlot: slot)
        let target = try XCTUnwrap(cluster.masterPorts().first { $0 != source })
        XCTAssertEqual(try RedisCLI.reply(port: source, ["SET", "{svc}:token", "t1"]) as? String, "OK")
        try await cluster.migrateSlot(slot, to: target)
        XCTAssertEqual(try cluster.masterPort(forSlot: slot), target)
        XCTAssertEqual(try RedisCLI.reply(port: target, ["CLUSTER", "KEYSLOT", "{svc}:token"]) as? Int, slot)
        XCTAssertEqual(try RedisCLI.reply(port: target, ["CLUSTER", "COUNTKEYSINSLOT", String(slot)]) as? Int, 1)
        XCTAssertEqual(try RedisCLI.reply(port: target, ["GET", "{svc}:token"]) as? String, "t1")
        let moved = try RedisCLI.run(port: source, ["GET", "{svc}:token"]).output
        XCTAssertTrue(moved.hasPrefix("MOVED \(slot) 127.0.0.1:\(target)"), moved)

        // Half-migrated: the moved key answers -ASK on the source, the other is still there.
        let halfSlot = RedisClusterProcess.keySlot("{half}:a")
        let halfSource = try cluster.masterPort(forSlot: halfSlot)
        let halfTarget = try XCTUnwrap(cluster.masterPorts().first { $0 != halfSource })
        for key in ["{half}:a", "{half}:b"] {
            XCTAssertEqual(try RedisCLI.reply(port: halfSource, ["SET", key, key]) as? String, "OK")
        }
        let migration = try cluster.beginSlotMigration(halfSlot, to: halfTarget, movingKeys: ["{half}:a"])
        let ask = try RedisCLI.run(port: halfSource, ["GET", "{half}:a"]).output
        XCTAssertTrue(ask.hasPrefix("ASK \(halfSlot) 127.0.0.1:\(halfTarget)"), ask)
        XCTAssertEqual(try RedisCLI.reply(port: halfSource, ["GET", "{half}:b"]) as? String, "{half}:b")
        let notYet = try RedisCLI.run(port: halfTarget, ["GET", "{half}:a"]).output
        XCTAssertTrue(notYet.hasPrefix("MOVED \(halfSlot) 127.0.0.1:\(halfSource)"), notYet)
        try await cluster.finishSlotMigration(migration)
        XCTAssertEqual(try cluster.masterPort(forSlot: halfSlot), halfTarget)
        XCTAssertEqual(
            try RedisCLI.reply(port: halfTarget, ["CLUSTER", "COUNTKEYSINSLOT", String(halfSlot)]) as? Int, 2)

        // Several slots with redis-cli --cluster reshard.
        let masters = try cluster.masterPorts()
        let resharded = try await cluster.reshard(slots: 10, from: masters[0], to: masters[1])
        XCTAssertEqual(resharded.count, 10)
        for movedSlot in resharded {
            XCTAssertEqual(try cluster.masterPort(forSlot: movedSlot), masters[1])
        }
    }

    func testClusterFailoverPromotesTheReplica() async throws {
        let cluster = try await RedisClusterProcess.start()
        let slot = RedisClusterProcess.keySlot("{svc}:token")
        let master = try cluster.masterPort(forSlot: slot)
        let view = try cluster.nodes()
        let masterID = try XCTUnwrap(view.first { $0.port == master }?.id)
        let replica = try XCTUnwrap(view.first { $0.masterID == masterID }?.port)
        XCTAssertEqual(try RedisCLI.reply(port: master, ["SET", "{svc}:token", "t1"]) as? String, "OK")
        XCTAssertEqual(try RedisCLI.reply(port: master, ["WAIT", "1", "10000"]) as? Int, 1)

        let killed = try cluster.killMaster(ofSlot: slot)
        XCTAssertEqual(killed, master)
        let promoted = try await cluster.waitForFailover(awayFrom: killed)
        XCTAssertEqual(promoted, replica)
        XCTAssertEqual(try cluster.masterPort(forSlot: slot), replica)
        XCTAssertEqual(try RedisCLI.info(port: replica, section: "replication")["role"], "master")
        XCTAssertEqual(try RedisCLI.reply(port: replica, ["GET", "{svc}:token"]) as? String, "t1")

        try await cluster.restartNode(port: killed)
        let returned = try XCTUnwrap(try cluster.nodes().first { $0.port == killed })
        XCTAssertEqual(returned.role, .replica)
        XCTAssertEqual(returned.masterID, try cluster.nodes().first { $0.port == replica }?.id)
    }

    // MARK: - Helpers

    private func openssl(_ arguments: [String]) throws -> ProgramOutput {
        try InstalledProgram.run("openssl", arguments)
    }

    /// A TLS handshake with `openssl s_client` that checks the chain against the test CA and the
    /// certificate's name against `hostname`, failing on any error.
    private func handshake(port: Int, hostname: String) throws -> ProgramOutput {
        try openssl([
            "s_client", "-connect", "127.0.0.1:\(port)", "-CAfile", try TestCertificates.shared().caCertificate,
            "-verify_hostname", hostname, "-verify_return_error", "-brief",
        ])
    }
}
