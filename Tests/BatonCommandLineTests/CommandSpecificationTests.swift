import BatonCommandLine
import BatonConfig
import BatonSupport
import Foundation
import XCTest

@testable import baton

/// Every subcommand's help against its option specification, and the one resolution order of
/// the shared connection options.
final class CommandSpecificationTests: XCTestCase {
    func testEverySubcommandHasASpecification() {
        let covered = Set(Baton.specifications.map { String($0.name.split(separator: " ")[0]) })
        XCTAssertEqual(covered, Set(Baton.subcommands.map(\.name)))
        XCTAssertEqual(
            Baton.specifications.count, Set(Baton.specifications.map(\.name)).count, "one specification per command")
    }

    /// For every subcommand: every option it accepts appears in its help, and every option its
    /// help names is accepted (by it, or, for a help several actions share, by one of them).
    func testHelpNamesExactlyTheAcceptedOptions() {
        for specification in Baton.specifications {
            let accepted = Set(specification.acceptedOptions.map(\.name))
            let documented = CommandSpecification.optionNames(in: specification.usage.joined(separator: "\n"))
            XCTAssertEqual(
                documented.subtracting(accepted), [], "baton \(specification.name): its usage names options it refuses")
            XCTAssertEqual(
                accepted.subtracting(documented), [],
                "baton \(specification.name): accepts options its usage does not name")
            for line in specification.usage {
                XCTAssertTrue(
                    specification.help.contains(line),
                    "baton \(specification.name) --help lacks its usage line '\(line)'")
            }
            let sharing = Baton.specifications.filter { $0.help == specification.help }
            let acceptedBySharers = Set(sharing.flatMap(\.acceptedOptions).map(\.name))
            let inHelp = CommandSpecification.optionNames(in: specification.help)
            XCTAssertEqual(
                inHelp.subtracting(acceptedBySharers), [],
                "baton \(specification.name) --help names options no command accepts")
            XCTAssertEqual(
                accepted.subtracting(inHelp), [],
                "baton \(specification.name) --help does not name every accepted option")
        }
    }

    func testAnAcceptedOptionParsesAndAnUndocumentedOneIsRefused() throws {
        let selftest = LockCommand.selftestSpecification
        XCTAssertEqual(try selftest.parse(["n", "--ttl", "5s", "--journal", "j"]).value("ttl"), "5s")
        XCTAssertThrowsError(try LockCommand.statusSpecification.parse(["n", "--ttl", "5s"]))
        XCTAssertTrue(LockCommand.help.contains("[--ttl 10s]"), "lock selftest's --ttl is documented")
    }

    // MARK: - Connection options: one order

    private func parse(_ words: [String], _ options: ConnectionOptions) throws -> ParsedArguments {
        try CommandSpecification(name: "test", usage: [], groups: [options.group], positionals: 0...0, discussion: "")
            .parse(words)
    }

    private func configurationFile() throws -> String {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent(
            "baton-\(name.filter(\.isLetter))-\(UUID().uuidString).json"
        ).path
        let json =
            #"{"redis_url": "redis://file-host:6379/0", "prefix": "fileprefix", "encryption": "none", "services": {"a": {"token_url": "https://auth.example.com/t", "client_id": "c"}}}"#
        try Data(json.utf8).write(to: URL(fileURLWithPath: path))
        addTeardownBlock { try? FileManager.default.removeItem(atPath: path) }
        return path
    }

    func testRedisURLAndPrefix_optionThenEnvironmentThenFileThenDefault() throws {
        let file = try configurationFile()
        let tokens = ConnectionOptions.tokens
        let all = ["BATON_REDIS_URL": "redis://env-host:6379/0", "BATON_PREFIX": "envprefix", "BATON_CONFIG": file]

        var resolved = try tokens.resolve(
            parse(["--redis", "redis://option-host:6379/0", "--prefix", "optionprefix"], tokens), environment: all)
        XCTAssertEqual(resolved.redisURL, "redis://option-host:6379/0")
        XCTAssertEqual(resolved.prefix, "optionprefix")
        XCTAssertEqual(resolved.configurationPath, file)

        resolved = try tokens.resolve(parse([], tokens), environment: all)
        XCTAssertEqual(resolved.redisURL, "redis://env-host:6379/0")
        XCTAssertEqual(resolved.prefix, "envprefix")

        resolved = try tokens.resolve(parse(["--config", file], tokens), environment: [:])
        XCTAssertEqual(resolved.redisURL, "redis://file-host:6379/0")
        XCTAssertEqual(resolved.prefix, "fileprefix")

        resolved = try tokens.resolve(parse([], tokens), environment: [:])
        XCTAssertEqual(resolved.redisURL, BatonDefaults.redisURL)
        XCTAssertEqual(resolved.prefix, "oauth")
        XCTAssertNil(resolved.configuration)

        // An empty variable counts as unset, for the command line as for the file's overrides.
        resolved = try tokens.resolve(
            parse([], tokens), environment: ["BATON_REDIS_URL": "", "BATON_PREFIX": "", "BATON_CONFIG": file])
        XCTAssertEqual(resolved.redisURL, "redis://file-host:6379/0")
        XCTAssertEqual(resolved.prefix, "fileprefix")
    }

    func testEachCommandKindKeepsItsDefaultsAndSources() throws {
        let file = try configurationFile()
        let environment = ["BATON_CONFIG": file, "BATON_PREFIX": "envprefix"]
        // Lock commands take no configuration file: BATON_CONFIG is not read.
        var resolved = try ConnectionOptions.locks.resolve(parse([], .locks), environment: ["BATON_CONFIG": file])
        XCTAssertEqual(resolved.redisURL, BatonDefaults.redisURL)
        XCTAssertEqual(resolved.prefix, "baton")
        XCTAssertNil(resolved.configuration)
        XCTAssertEqual(
            try ConnectionOptions.locks.resolve(parse([], .locks), environment: environment).prefix, "envprefix")
        // bench never writes under BATON_PREFIX.
        resolved = try ConnectionOptions.bench.resolve(parse([], .bench), environment: environment)
        XCTAssertEqual(resolved.prefix, "baton-bench")
        XCTAssertEqual(
            try ConnectionOptions.bench.resolve(parse(["--prefix", "p"], .bench), environment: environment).prefix, "p")
        // ping takes --redis only.
        XCTAssertThrowsError(try parse(["--prefix", "p"], .redisOnly))
        XCTAssertNil(try ConnectionOptions.redisOnly.resolve(parse([], .redisOnly), environment: environment).prefix)
        // serve and refresh need the file.
        XCTAssertThrowsError(try ConnectionOptions.coordinator.resolve(parse([], .coordinator), environment: [:])) {
            error in
            XCTAssertEqual(
                (error as? UsageError)?.message,
                "this command needs the configuration file: pass --config FILE or set BATON_CONFIG")
        }
        XCTAssertEqual(
            try ConnectionOptions.coordinator.resolve(parse([], .coordinator), environment: environment).prefix,
            "envprefix")
    }

    func testRedisOptionRefusesAPasswordWithoutRepeatingIt() throws {
        for url in ["redis://:hunter2@host:6379/0", "redis://user:hunter2@host/0", "unix:///s.sock?password=hunter2"] {
            XCTAssertThrowsError(
                try ConnectionOptions.tokens.resolve(parse(["--redis", url], .tokens), environment: [:])
            ) { error in
                let message = (error as? UsageError)?.message ?? ""
                XCTAssertTrue(message.hasPrefix("--redis must not carry a password"), message)
                XCTAssertTrue(message.contains("BATON_REDIS_URL"), message)
                XCTAssertFalse(message.contains("hunter2"), message)
            }
        }
    }

    func testGroupSynopses() {
        XCTAssertEqual(ConnectionOptions.tokens.group.synopsis, "[--redis URL] [--prefix PREFIX] [--config FILE]")
        XCTAssertEqual(ConnectionOptions.coordinator.group.synopsis, "--config FILE [--redis URL] [--prefix PREFIX]")
        XCTAssertEqual(ConnectionOptions.locks.group.synopsis, "[--redis URL] [--prefix PREFIX]")
        XCTAssertEqual(ConnectionOptions.redisOnly.group.synopsis, "[--redis URL]")
    }
}
