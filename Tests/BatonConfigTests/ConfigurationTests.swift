import BatonSupport
import Foundation
import XCTest

@testable import BatonConfig

final class ConfigurationTests: XCTestCase {
    private let good = """
        {
          "redis_url": "redis://127.0.0.1:6379/0",
          "prefix": "oauth",
          "services": {
            "my-api": {
              "token_url": "https://auth.example.com/oauth/token",
              "grant": "refresh_token",
              "client_id": "abc123",
              "client_secret_env": "MY_API_CLIENT_SECRET",
              "auth_method": "client_secret_post",
              "scope": "read write",
              "extra_params": {"audience": "https://api.example.com"},
              "refresh_buffer": "60s",
              "default_lifetime": "1h"
            },
            "machine": {
              "token_url": "http://127.0.0.1:9000/token",
              "grant": "client_credentials",
              "client_id": "m2m",
              "client_secret_file": "secret.txt",
              "auth_method": "client_secret_basic"
            }
          }
        }
        """

    private func parse(_ text: String, environment: [String: String] = ["MY_API_CLIENT_SECRET": "s3cret"]) throws
        -> BatonConfiguration
    {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("baton-config-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        try "m2m-secret\n".write(to: folder.appendingPathComponent("secret.txt"), atomically: true, encoding: .utf8)
        try FileManager.default.setAttributes(
            [.posixPermissions: 0o600], ofItemAtPath: folder.appendingPathComponent("secret.txt").path)
        addTeardownBlock { try? FileManager.default.removeItem(at: folder) }
        return try BatonConfiguration.parse(
            Array(text.utf8), environment: withTestKeyring(environment), baseDirectory: folder.path, file: "test.json")
    }

    private func problems(_ text: String, environment: [String: String] = ["MY_API_CLIENT_SECRET": "s3cret"])
        -> [String]
    {
        configurationError { try parse(text, environment: environment) }?.problems.map(\.description) ?? []
    }

    func testTheDocumentedExampleWithDefaults() throws {
        let configuration = try parse(good)
        XCTAssertEqual(configuration.redisURL, "redis://127.0.0.1:6379/0")
        XCTAssertEqual(configuration.prefix, "oauth")
        XCTAssertEqual(configuration.services.map(\.name), ["my-api", "machine"], "file order is kept")
        XCTAssertEqual(configuration.lockTTL, .seconds(30))
        XCTAssertEqual(configuration.lockWait, .seconds(10))
        XCTAssertEqual(configuration.maxConcurrentRefreshes, 32)
        let api = try XCTUnwrap(configuration.service("my-api"))
        XCTAssertEqual(api.tokenURL.absoluteString, "https://auth.example.com/oauth/token")
        XCTAssertEqual(api.grant, .refreshToken)
        XCTAssertEqual(api.clientSecret?.reveal(), "s3cret")
        XCTAssertEqual(api.authMethod, .clientSecretPost)
        XCTAssertEqual(api.scope, "read write")
        XCTAssertEqual(api.extraParameters.map(\.name), ["audience"])
        XCTAssertEqual(api.refreshBuffer, .seconds(60))
        XCTAssertEqual(api.defaultLifetime, .seconds(3600))
        XCTAssertEqual(api.requestTimeout, .seconds(15))
        XCTAssertEqual(api.forcedRefreshMinInterval, .seconds(5))
        let machine = try XCTUnwrap(configuration.service("machine"))
        XCTAssertEqual(machine.grant, .clientCredentials)
        XCTAssertEqual(machine.authMethod, .clientSecretBasic)
        XCTAssertEqual(machine.clientSecret?.reveal(), "m2m-secret", "read from the file next to the config, trimmed")
        XCTAssertEqual("\(machine.clientSecret!)", "<redacted>")
        XCTAssertEqual(String(reflecting: machine.clientSecret!), "<redacted>")
    }

    func testEnvironmentOverridesTheFile() throws {
        let configuration = try parse(
            good,
            environment: [
                "MY_API_CLIENT_SECRET": "x", "BATON_REDIS_URL": "redis://10.0.0.5:6380/2", "BATON_PREFIX": "tokens",
            ])
        XCTAssertEqual(configuration.redisURL, "redis://10.0.0.5:6380/2")
        XCTAssertEqual(configuration.prefix, "tokens")
    }

    func testEveryProblemIsReportedAtOnceWithItsPath() {
        let found = problems(
            """
            {
              "redis_url": "http://localhost",
              "prefx": "oauth",
              "services": {
                "bad name!": {"token_url": "https://a.example/t", "client_id": "x"},
                "svc": {
                  "token_url": "http://auth.example.com/token",
                  "client_id": "abc",
                  "client_secret": "inline-secret",
                  "client_secret_env": "NOT_SET_ANYWHERE",
                  "refresh_buffer": "60",
                  "default_lifetime": 3600,
                  "grant": "password",
                  "auth_method": "private_key_jwt",
                  "extra_params": {"audience": 5, "grant_type": "x"},
                  "request_timeout": "45s",
                  "scopes": "read"
                },
                "nourl": {"client_id": "x"}
              }
            }
            """, environment: [:])
        let expected = [
            "redis_url: not a Redis URL",
            "prefx: unknown key at line 3 (did you mean 'prefix'?)",
            "services.bad name!: '!' is not allowed",  // name check (the space comes first)
            "services.svc.client_secret: an inline client_secret is refused",
            "services.svc.scopes: unknown key at line 17 (did you mean 'scope'?)",
            "services.svc.grant: 'password' is not supported",
            "services.svc.auth_method: 'private_key_jwt' is not supported",
            "services.svc.token_url: http:// sends the client secret",
            "services.svc.client_secret_env: the environment variable NOT_SET_ANYWHERE is not set",
            "services.svc.extra_params.audience: must be a string, not a number",
            "services.svc.extra_params.grant_type: Baton sets this parameter itself",
            "services.svc.refresh_buffer: '60' is not a duration",
            "services.svc.default_lifetime: 3600 has no unit",
            "services.svc.request_timeout: 45s must be shorter than lock_ttl",
            "services.nourl.token_url: missing",
        ]
        for text in expected {
            let prefix = text.replacingOccurrences(of: "'!' is not allowed", with: "' ' is not allowed")
            XCTAssertTrue(
                found.contains { $0.hasPrefix(text) || $0.hasPrefix(prefix) },
                "missing problem: \(text)\nfound:\n\(found.joined(separator: "\n"))")
        }
        XCTAssertFalse(found.joined().contains("inline-secret"), "a secret never appears in an error")
    }

    func testSyntaxErrorsNameLineAndColumn() {
        XCTAssertEqual(
            problems("{\n  \"prefix\": \"oauth\",\n}"), ["not valid JSON: line 3, column 1: trailing comma before '}'"])
        XCTAssertEqual(
            problems("{\"prefix\": \"a\", \"prefix\": \"b\"}"),
            ["not valid JSON: line 1, column 17: duplicate key \"prefix\""])
        XCTAssertEqual(
            problems("// comment\n{}"), ["not valid JSON: line 1, column 1: comments are not allowed in JSON"])
        XCTAssertEqual(problems("[]"), ["the top level must be a JSON object, not an array"])
        XCTAssertEqual(
            problems("{\"services\": {}}"),
            ["services: no services: add at least one, e.g. \"my-api\": {\"token_url\": ..., \"client_id\": ...}"])
        XCTAssertEqual(problems("{}"), ["services: missing: an object of services keyed by name"])
    }

    func testSecretSourcesMustBeUsable() {
        let both = problems(
            """
            {"services": {"s": {"token_url": "https://a.example/t", "client_id": "x", "client_secret_env": "A", "client_secret_file": "f"}}}
            """)
        XCTAssertTrue(both.contains { $0.contains("not both") }, "\(both)")
        let missingFile = problems(
            """
            {"services": {"s": {"token_url": "https://a.example/t", "client_id": "x", "client_secret_file": "nope.txt"}}}
            """)
        XCTAssertTrue(
            missingFile.contains { $0.contains("client_secret_file: cannot read") && $0.contains("no such file") },
            "\(missingFile)")
        let credentialsWithoutSecret = problems(
            """
            {"services": {"s": {"token_url": "https://a.example/t", "client_id": "x", "grant": "client_credentials"}}}
            """)
        XCTAssertTrue(
            credentialsWithoutSecret.contains { $0.contains("needs a client secret") }, "\(credentialsWithoutSecret)")
    }

    func testInsecureHTTPNeedsLoopbackOrAnExplicitOptIn() throws {
        for (url, allowed) in [
            ("http://localhost:8080/t", true), ("http://127.0.0.1/t", true), ("http://[::1]:9/t", true),
            ("http://auth.internal/t", false), ("ftp://a/t", false), ("not a url", false),
        ] {
            let text = "{\"services\": {\"s\": {\"token_url\": \"\(url)\", \"client_id\": \"x\"}}}"
            if allowed {
                XCTAssertNoThrow(try parse(text), url)
            } else {
                XCTAssertThrowsError(try parse(text), url)
            }
        }
        XCTAssertNoThrow(
            try parse(
                "{\"services\": {\"s\": {\"token_url\": \"http://auth.internal/t\", \"client_id\": \"x\", \"allow_insecure_http\": true}}}"
            ))
    }

    /// A problem with a URL never quotes it: it may hold a password, and `baton serve` logs the
    /// problems of a configuration it failed to reload.
    func testURLsWithCredentialsAreNeverQuoted() {
        for redisURL in [
            "valkeys://:hunter2-userinfo@cache:6380/0", "valkey://cache:6380?password=hunter2-query",
            "unix-socket:///s.sock?pass=hunter2-pass", "hunter2-bare",
        ] {
            let found = problems(
                #"{"redis_url": "\#(redisURL)", "services": {"s": {"token_url": "https://a.example/t", "client_id": "x"}}}"#
            )
            XCTAssertEqual(
                found,
                [
                    "redis_url: not a Redis URL: use \(BatonDefaults.redisURLForms)"
                ])
            XCTAssertFalse(found.joined().contains("hunter2"), "\(found)")
        }
        let fromEnvironment = problems(
            #"{"services": {"s": {"token_url": "https://a.example/t", "client_id": "x"}}}"#,
            environment: ["BATON_REDIS_URL": "tcp://u:hunter2-env@h?token=hunter2-env"])
        XCTAssertFalse(fromEnvironment.joined().contains("hunter2"), "\(fromEnvironment)")
        XCTAssertTrue(fromEnvironment.joined().contains("redis_url: not a Redis URL"), "\(fromEnvironment)")
        for tokenURL in ["https://user:hunter2-token@", "/token?client_secret=hunter2-token"] {
            let found = problems(#"{"services": {"s": {"token_url": "\#(tokenURL)", "client_id": "x"}}}"#)
            XCTAssertTrue(found.contains { $0.hasPrefix("services.s.token_url: not an absolute URL") }, "\(found)")
            XCTAssertFalse(found.joined().contains("hunter2"), "\(found)")
        }
    }

    func testLoadReportsAMissingFile() {
        XCTAssertThrowsError(try BatonConfiguration.load(path: "/nonexistent/baton.json")) { error in
            XCTAssertTrue(String(describing: error).contains("does not exist"), "\(error)")
        }
    }

    func testJSONReader() throws {
        let value = try JSONReader.parse(
            Array(#"{"a": [1, -2.5e3, true, null, "x\u00e9\n\ud83d\ude00"], "b": {}}"#.utf8))
        guard case .object(let members) = value else { return XCTFail() }
        XCTAssertEqual(members.map(\.key), ["a", "b"])
        XCTAssertEqual(
            members[0].value, .array([.number("1"), .number("-2.5e3"), .bool(true), .null, .string("xé\n😀")]))
        for bad in ["{", "[1,]", "01", "\"unterminated", "{\"a\" 1}", "tru", "1 2", "\"\\x\""] {
            XCTAssertThrowsError(try JSONReader.parse(Array(bad.utf8)), bad)
        }
    }
}
