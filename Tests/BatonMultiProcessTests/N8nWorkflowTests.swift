import BatonRedis
import BatonTestSupport
import BatonTokens
import Foundation
import XCTest

/// The importable n8n workflows in `Deploy/n8n/`: each file is valid JSON in the form
/// `n8n import:workflow` reads, uses only node types, versions, parameters and values that n8n's
/// node definitions have (``N8nNodeDefinitions``), wires existing nodes; and the Redis commands
/// the Redis-only workflow sends succeed as the shipped `worker` ACL user.
final class N8nWorkflowTests: XCTestCase {
    private static let files = ["baton-token-http.json", "baton-token-redis.json"]
    private static let service = "n8n-api"

    func testEachFileUsesOnlyWhatNodeDefinitionsHave() throws {
        for name in Self.files {
            let file = try N8nWorkflowFile(named: name)
            XCTAssertEqual(file.workflows.count, 2, "\(name): a sub-workflow and an example")
            let problems = file.problems()
            XCTAssertTrue(problems.isEmpty, "\(name):\n" + problems.joined(separator: "\n"))
        }
    }

    /// The checker itself finds what it is there to find (a check that cannot fail is no check).
    func testTheCheckFindsBrokenWorkflows() throws {
        let file = try N8nWorkflowFile(named: "baton-token-redis.json")
        var broken = file.workflows[0]
        var nodes = broken.nodes
        var push = nodes[2]
        var parameters = push["parameters"] as? [String: Any] ?? [:]
        parameters["keyType"] = "string"  // Push has no Key Type
        parameters["tail"] = false
        push["parameters"] = parameters
        push["typeVersion"] = 2
        nodes[2] = push
        nodes.append(["name": "Loose", "type": "n8n-nodes-base.set", "typeVersion": 3.4, "parameters": [:]])
        broken = .init(
            id: broken.id, name: broken.name, nodes: nodes,
            connections: broken.connections.merging(["Ghost": ["main": [[["node": "Nowhere"]]]]]) { $1 })
        let problems = N8nWorkflowFile(path: file.path, workflows: [broken]).problems().joined(separator: "\n")
        for expected in [
            "parameter keyType", "no typeVersion 2.0", "unknown node type n8n-nodes-base.set", "starts at Ghost",
        ] {
            XCTAssertTrue(problems.contains(expected), "no problem mentions \(expected):\n\(problems)")
        }
    }

    /// The Redis node's session as n8n runs it (node-redis 4.6 in n8n-nodes-base: `AUTH`, the
    /// `CLIENT SETINFO` pair whose error replies it ignores, then the node's `PING`, the commands,
    /// `QUIT`), as the shipped `worker` user: `TYPE` for Key Type "Automatic", `GET` of the record,
    /// `LPUSH` of the forced-refresh request, nothing refused but `CLIENT SETINFO`.
    func testRedisWorkflowCommandsWorkAsTheWorkerUser() throws {
        let workflow = try XCTUnwrap(try N8nWorkflowFile(named: "baton-token-redis.json").workflows.first)
        let read = try XCTUnwrap(
            workflow.nodes(ofType: "n8n-nodes-base.redis").first { Self.parameter("operation", of: $0) == "get" })
        let push = try XCTUnwrap(
            workflow.nodes(ofType: "n8n-nodes-base.redis").first { Self.parameter("operation", of: $0) == "push" })
        XCTAssertEqual(Self.parameter("keyType", of: read), "string")
        XCTAssertEqual((push["parameters"] as? [String: Any])?["tail"] as? Bool, false, "Push must be LPUSH")
        let keys = try TokenKeys(prefix: "oauth", service: Self.service)
        let key = try Self.key(fromExpression: Self.parameter("key", of: read), service: Self.service)
        XCTAssertEqual(key, keys.token, "the Get node's key is not Baton's token key")
        let list = try XCTUnwrap(Self.parameter("list", of: push))
        let message = try Self.request(fromExpression: Self.parameter("messageData", of: push), version: 7)

        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("baton-n8n-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        let passwords = ["coordinator": UUID().uuidString, "worker": UUID().uuidString]
        let adminPassword = UUID().uuidString
        let acl = try ShippedDeployment.aclFileCopy(
            in: folder, passwords: passwords, extraLines: ["user n8n-test-admin on >\(adminPassword) ~* &* +@all"])
        let redis = try RedisServerProcess.start(arguments: ["--aclfile", acl.path])
        defer { redis.stop() }
        let admin = try RedisClient(url: redis.url(username: "n8n-test-admin", password: adminPassword))
        defer { admin.shutDown() }
        let adminConnection = try admin.dedicatedConnection(routingKey: nil)
        defer { adminConnection.close() }
        let record = #"{"access_token":"n8n-test-token","expires_at":4102444800000,"status":"ok","version":7}"#
        try adminConnection.send(RedisCommand("SET", key, record))
        try adminConnection.send(RedisCommand("ACL", "LOG", "RESET"))

        let worker = try RedisClient(url: redis.url(username: "worker", password: passwords["worker"]))
        defer { worker.shutDown() }
        let connection = try worker.dedicatedConnection(routingKey: nil)  // AUTH worker ...
        defer { connection.close() }
        let replies = try connection.pipeline([
            RedisCommand("CLIENT", "SETINFO", "LIB-VER", "4.6.14"),
            RedisCommand("CLIENT", "SETINFO", "LIB-NAME", "node-redis"),
            RedisCommand("PING"), RedisCommand("TYPE", key), RedisCommand("GET", key),
            RedisCommand("LPUSH", list, message),
            RedisCommand("QUIT"),
        ])
        XCTAssertEqual(replies.count, 7)
        XCTAssertEqual(replies[2].string, "PONG", "PING: \(replies[2])")
        XCTAssertEqual(replies[3].string, "string", "TYPE (Key Type Automatic): \(replies[3])")
        XCTAssertEqual(replies[4].string, record, "GET: \(replies[4])")
        XCTAssertEqual(replies[5].integer, 1, "LPUSH: \(replies[5])")
        XCTAssertEqual(replies[6].string, "OK", "QUIT: \(replies[6])")

        let queued = try adminConnection.send(RedisCommand("LRANGE", list, 0, -1)).array?.compactMap(\.string)
        XCTAssertEqual(queued, [message], "the forced-refresh request as Baton will read it")
        let decoded = try JSONSerialization.jsonObject(with: Data(message.utf8)) as? [String: Any]
        XCTAssertEqual(decoded?["service"] as? String, Self.service)
        XCTAssertEqual((decoded?["version"] as? NSNumber)?.int64Value, 7)
        // Redis logs every refused command; CLIENT SETINFO (Redis 7.2 and later) is the only one
        // allowed there, as node-redis ignores its error reply.
        let denied = try (adminConnection.send(RedisCommand("ACL", "LOG")).array ?? []).map { entry in
            let fields = entry.array ?? []
            return stride(from: 0, to: fields.count - 1, by: 2).reduce(into: [String: String]()) { map, index in
                map[fields[index].string ?? ""] = fields[index + 1].string ?? fields[index + 1].description
            }
        }
        XCTAssertTrue(
            denied.allSatisfy { $0["object"] == "client|setinfo" }, "refused as worker: \(denied.map(\.description))")
    }

    // MARK: - Reading the workflow's expressions

    /// A string parameter of a node.
    private static func parameter(_ name: String, of node: [String: Any]) -> String? {
        (node["parameters"] as? [String: Any])?[name] as? String
    }

    /// The key a `={{ 'PREFIX' + <service> + 'SUFFIX' }}` expression gives for `service`.
    private static func key(fromExpression expression: String?, service: String) throws -> String {
        let text = try XCTUnwrap(expression, "the Get node has no key")
        let match = try XCTUnwrap(
            text.wholeMatch(of: #/=\{\{ '([^']*)' \+ .+ \+ '([^']*)' \}\}/#),
            "the key is no longer 'prefix' + service + 'suffix': \(text)")
        return "\(match.1)\(service)\(match.2)"
    }

    /// The text `={{ JSON.stringify({ service: <service>, version: <number> }) }}` gives, as
    /// JavaScript writes it: keys in that order, no spaces.
    private static func request(fromExpression expression: String?, version: Int) throws -> String {
        let text = try XCTUnwrap(expression, "the Push node has no data")
        XCTAssertNotNil(
            text.wholeMatch(of: #/=\{\{ JSON\.stringify\(\{ service: [^,]+, version: Number\([^)]+\) \}\) \}\}/#),
            "the pushed data is no longer {service, version} with a numeric version: \(text)")
        return #"{"service":"\#(service)","version":\#(version)}"#
    }
}
