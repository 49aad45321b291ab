import BatonCommandLine
import Foundation

/// What a program run to completion printed (standard output and error, interleaved) and how it
/// exited.
public struct ProgramOutput: Sendable {
    /// The exit code (128 + signal when a signal ended it).
    public let status: Int32
    /// Standard output and standard error, as written.
    public let output: String

    /// Whether the program exited with 0.
    public var succeeded: Bool { status == 0 }
}

/// The installed programs test topologies drive (`redis-server`, `redis-cli`, `openssl`), found
/// on `PATH` and in the usual Debian folders.
public enum InstalledProgram {
    /// The Debian package that provides each program, for the error that says what to install.
    private static let packages = [
        "redis-server": "redis-server", "redis-cli": "redis-tools", "openssl": "openssl",
    ]

    /// The absolute path of `name`.
    /// - Throws: ``TopologyError`` naming the package to install when it is nowhere.
    public static func path(_ name: String) throws -> String {
        let searchPath = ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin"
        let candidates =
            searchPath.split(separator: ":").map { "\($0)/\(name)" } + ["/usr/bin/\(name)", "/usr/local/bin/\(name)"]
        if let found = candidates.first(where: { FileManager.default.isExecutableFile(atPath: $0) }) { return found }
        let package = packages[name] ?? name
        throw TopologyError(
            "\(name) is not installed: the tests need it. Install it with `apt-get install -y \(package)` (or run `make deps`)."
        )
    }

    /// Runs `name` with `arguments` to completion (killing it after `timeout` seconds) and returns
    /// its output. Secrets go in `environment`, never in `arguments`, which any process can read.
    /// - Throws: ``TopologyError`` when the program is missing, cannot start, or does not finish
    ///   in time (with what it printed so far).
    public static func run(
        _ name: String, _ arguments: [String], environment: [String: String] = [:], timeout: Double = 20
    )
        throws -> ProgramOutput
    {
        let executable = try path(name)
        let outputFile = FileManager.default.temporaryDirectory
            .appendingPathComponent("baton-\(name)-\(UUID().uuidString).out")
        defer { try? FileManager.default.removeItem(at: outputFile) }
        let process: ChildProcess
        do {
            process = try ChildProcess(
                executable: executable, arguments: arguments, streams: .file(outputFile.path), environment: environment)
        } catch {
            throw TopologyError("\(name) could not be started: \(error)")
        }
        let finished = process.waitForExit(timeout: timeout)
        if !finished { process.terminate(grace: 1) }
        let output = (try? String(contentsOf: outputFile, encoding: .utf8)) ?? ""
        guard finished else {
            throw TopologyError(
                "`\(name) \(arguments.joined(separator: " "))` did not finish within \(timeout) s. It printed:\n\(output)"
            )
        }
        return ProgramOutput(status: process.terminationStatus ?? -1, output: output)
    }
}
