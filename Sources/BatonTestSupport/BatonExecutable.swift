import BatonCommandLine
import BatonSupport
import Foundation

/// The `baton` executable built next to the test bundle, for multi-process tests.
public enum BatonExecutable {
    /// Its path: `BATON_EXECUTABLE` if set, else `baton` beside the running test binary.
    public static var path: String {
        if let override = ProcessInfo.processInfo.environment["BATON_EXECUTABLE"] { return override }
        let testBinary =
            (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]
        var directory = URL(fileURLWithPath: testBinary).deletingLastPathComponent()
        // On Linux the bundle is a plain executable in the build folder; on macOS a .xctest bundle.
        while directory.path != "/"
            && !FileManager.default.isExecutableFile(atPath: directory.appendingPathComponent("baton").path)
        {
            directory = directory.deletingLastPathComponent()
        }
        return directory.appendingPathComponent("baton").path
    }

    /// Starts `baton` with `arguments`; its output goes to a fresh file in the temp directory.
    /// The test keyring (``TestConfiguration/encryptionKeys``) is added as `BATON_ENCRYPTION_KEYS`
    /// unless `environment` names that variable (set it to `""` for a child without keys).
    public static func start(_ arguments: [String], environment: [String: String] = [:]) throws -> (
        ChildProcess, output: URL
    ) {
        var environment = environment
        if environment[BatonDefaults.Environment.encryptionKeys] == nil {
            environment[BatonDefaults.Environment.encryptionKeys] = TestConfiguration.encryptionKeys
        }
        guard FileManager.default.isExecutableFile(atPath: path) else {
            throw CocoaError(
                .fileNoSuchFile,
                userInfo: [NSLocalizedDescriptionKey: "no baton executable at \(path): run `swift build` first"])
        }
        let output = FileManager.default.temporaryDirectory.appendingPathComponent("baton-\(UUID().uuidString).log")
        let process = try ChildProcess(
            executable: path, arguments: arguments, streams: .file(output.path), environment: environment)
        return (process, output)
    }

    /// Runs `baton` to completion (at most `timeout` seconds) and returns its status and output.
    public static func run(_ arguments: [String], environment: [String: String] = [:], timeout: Double = 60) throws -> (
        status: Int32, output: String
    ) {
        let (process, output) = try start(arguments, environment: environment)
        defer { try? FileManager.default.removeItem(at: output) }
        if !process.waitForExit(timeout: timeout) { process.terminate() }
        let text = (try? String(contentsOf: output, encoding: .utf8)) ?? ""
        return (process.terminationStatus ?? -1, text)
    }
}
