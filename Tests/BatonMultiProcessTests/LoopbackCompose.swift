import BatonCommandLine
import BatonRedis
import BatonTestSupport
import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// Redis and Sentinel services of a shipped compose file, run as local processes on 127.0.0.1 the
/// way Docker runs them, changing only what a container's network and volumes provide:
/// - each service listens on a loopback port of its own (`--port`) instead of its container port,
///   and a service's host name in its command or in a file it mounts (`redis-1 6379`,
///   `redis-1:6379`, or the bare name) becomes `127.0.0.1` and that port;
/// - a mounted shipped file is copied, its `CHANGE-ME-` placeholders filled with the test's
///   passwords and, outside comments, its host names and container paths made local; a named
///   volume is a folder; container paths in the command and in the copies point to those;
/// - `docker-entrypoint.sh` (the Redis image's entry point, which drops root and runs its
///   arguments) is left out, and the server gets `--bind 127.0.0.1 --dir VOLUME --logfile FILE`
///   (a container's working directory is its `/data` volume; its log is its standard output).
///
/// Services start in the order the test starts them, and a service's files may name only services
/// already started, whose ports are then known.
final class LoopbackCompose {
    /// A service that could not be set up or did not start; the message carries its log.
    struct Failure: Error, CustomStringConvertible {
        let description: String
    }

    private struct Service {
        let definition: ShippedDeployment.ComposeService
        let containerPort: Int
        let folder: URL
        var port: Int?
        var arguments: [String] = []
        var process: ChildProcess?
    }

    private let composeFile: URL
    private let values: [String: String]
    private let aclAdditions: [String]
    private let folder: URL
    private var services: [String: Service] = [:]

    /// Reads `containerPorts.keys` from `composeFile`.
    /// - Parameters:
    ///   - containerPorts: each service to run and the port it listens on in its container.
    ///   - values: the value of each `CHANGE-ME-NAME` placeholder, by NAME.
    ///   - aclAdditions: lines appended to every mounted `.acl` file (a test's own users).
    ///   - folder: where the copies, volumes and logs go.
    init(
        composeFile: URL, containerPorts: [String: Int], values: [String: String], aclAdditions: [String],
        folder: URL
    ) throws {
        self.composeFile = composeFile
        self.values = values
        self.aclAdditions = aclAdditions
        self.folder = folder
        for (name, containerPort) in containerPorts {
            services[name] = Service(
                definition: try ShippedDeployment.composeService(name, in: composeFile), containerPort: containerPort,
                folder: folder.appendingPathComponent(name))
        }
    }

    deinit {
        for service in services.values { service.process?.terminate(grace: 3) }
    }

    /// The loopback port of a started service.
    func port(_ name: String) -> Int {
        guard let port = services[name]?.port else { preconditionFailure("\(name) has not been started") }
        return port
    }

    /// The named volume's folder of `name` (its `/data`).
    func volume(_ name: String) -> URL {
        folder(of: name).appendingPathComponent("volume")
    }

    /// `name`'s log so far.
    func log(_ name: String) -> String {
        (try? String(contentsOf: logFile(name), encoding: .utf8)) ?? "(no log)"
    }

    /// The command `name` runs with (after ``start(_:)``), for a failure message. It holds no
    /// secret: passwords stay in the files.
    func commandLine(_ name: String) -> String {
        services[name]?.arguments.joined(separator: " ") ?? ""
    }

    /// Every service's command and the end of its log, for a failure message.
    var diagnostics: String {
        services.keys.sorted().map { name in
            "--- \(name) (\(commandLine(name))):\n\(log(name).split(separator: "\n").suffix(40).joined(separator: "\n"))"
        }.joined(separator: "\n")
    }

    /// Starts `name` (again, after ``kill9(_:)``, with the same port and volume) and waits until it
    /// answers on its port.
    /// - Throws: ``Failure`` with its log when it exits or does not answer within 30 s.
    func start(_ name: String) async throws {
        guard var service = services[name] else { preconditionFailure("\(name) is not a service of this test") }
        let firstStart = service.port == nil
        // A port found free may be taken before the server binds it: a first start tries afresh.
        for attempt in 1...3 {
            if firstStart {
                try? FileManager.default.removeItem(at: service.folder)
                service.port = try freeLoopbackPort()
                services[name] = service
                service.arguments = try arguments(of: service)
            }
            try FileManager.default.createDirectory(at: volume(name), withIntermediateDirectories: true)
            let process = try ChildProcess(
                executable: service.arguments[0], arguments: Array(service.arguments.dropFirst()),
                streams: .file(logFile(name).path))
            service.process = process
            services[name] = service
            if try await answers(service, process) { return }
            if firstStart && attempt < 3 && log(name).contains("Address already in use") { continue }
            break
        }
        throw Failure(description: "\(name) did not start (\(commandLine(name))); its log:\n\(log(name))")
    }

    /// Kills `name` with SIGKILL, as a crash or a power loss would, and waits for it to exit.
    func kill9(_ name: String) {
        services[name]?.process?.signal(SIGKILL)
        services[name]?.process?.waitForExit(timeout: 10)
    }

    /// Stops every service (SIGTERM, then SIGKILL).
    func stopAll() {
        for service in services.values { service.process?.terminate(grace: 5) }
    }

    /// `text` with every started service's host name (with its container port, when one follows)
    /// replaced by 127.0.0.1 and its loopback port, as the compose network would resolve it.
    /// - Parameter skippingComments: leave lines starting with `#` (configuration comments) alone.
    /// - Throws: ``Failure`` when `text` names a service that has not started (its port is unknown).
    func loopback(_ text: String, skippingComments: Bool = false) throws -> String {
        guard skippingComments else { return try loopbackLine(text) }
        return try text.split(separator: "\n", omittingEmptySubsequences: false).map { line in
            line.trimmingCharacters(in: .whitespaces).hasPrefix("#") ? String(line) : try loopbackLine(String(line))
        }.joined(separator: "\n")
    }

    private func loopbackLine(_ text: String) throws -> String {
        var result = text
        for (name, service) in services {
            let expression = try NSRegularExpression(
                pattern:
                    "(?<![A-Za-z0-9_.-])\(NSRegularExpression.escapedPattern(for: name))([: ]\(service.containerPort))?(?![A-Za-z0-9_.-])"
            )
            let matches = expression.matches(in: result, range: NSRange(result.startIndex..., in: result))
            guard !matches.isEmpty else { continue }
            guard let port = service.port else {
                throw Failure(description: "a file or command names \(name) before it has started: \(text)")
            }
            var replaced = ""
            var rest = result.startIndex
            for match in matches {
                guard let whole = Range(match.range, in: result) else { continue }
                let separator = Range(match.range(at: 1), in: result).map { String(result[$0].prefix(1)) }
                replaced += result[rest..<whole.lowerBound] + "127.0.0.1" + (separator.map { "\($0)\(port)" } ?? "")
                rest = whole.upperBound
            }
            result = replaced + result[rest...]
        }
        return result
    }

    // MARK: - Setting a service up

    private func folder(of name: String) -> URL {
        folder.appendingPathComponent(name)
    }

    private func logFile(_ name: String) -> URL {
        folder(of: name).appendingPathComponent("log")
    }

    /// The service's command with container paths, host names and ports made local (see the type's
    /// documentation), and the files it mounts prepared.
    private func arguments(of service: Service) throws -> [String] {
        let name = service.definition.name
        var paths: [(target: String, local: String)] = []
        for mount in service.definition.mounts where mount.volume != nil {
            paths.append((mount.target, volume(name).path))
        }
        let copies = folder(of: name).appendingPathComponent("files")
        try FileManager.default.createDirectory(at: copies, withIntermediateDirectories: true)
        let files = service.definition.mounts.compactMap { mount in mount.file.map { (mount.target, $0) } }
        // Every path first: a file may name another (redis.conf's aclfile names users.acl). Host
        // names go before paths, as the local paths hold service names.
        for (target, file) in files {
            paths.append((target, copies.appendingPathComponent(file.lastPathComponent).path))
        }
        for (_, file) in files {
            let shipped = try String(contentsOf: file, encoding: .utf8)
            var text = try ShippedDeployment.fillingPlaceholders(in: shipped, values: values, file: file).text
            text = try localPaths(loopback(text, skippingComments: true), paths)
            if file.pathExtension == "acl" { text += aclAdditions.map { $0 + "\n" }.joined() }
            try text.write(to: copies.appendingPathComponent(file.lastPathComponent), atomically: true, encoding: .utf8)
        }
        var words = try service.definition.command.filter { $0 != "docker-entrypoint.sh" }.map {
            try localPaths(loopback($0), paths)
        }
        guard words.contains("redis-server") else {
            throw Failure(description: "\(composeFile.path): \(name)'s command runs no redis-server: \(words)")
        }
        words += [
            "--port", String(service.port!), "--bind", "127.0.0.1", "--dir", volume(name).path,
            "--logfile", logFile(name).path, "--daemonize", "no",
        ]
        return words
    }

    /// `text` with each container path (a whole word, or the start of one followed by `/`)
    /// replaced by its local path.
    private func localPaths(_ text: String, _ paths: [(target: String, local: String)]) throws -> String {
        var result = text
        for (target, local) in paths.sorted(by: { $0.target.count > $1.target.count }) {
            let expression = try NSRegularExpression(
                pattern: "(?<![A-Za-z0-9_./-])\(NSRegularExpression.escapedPattern(for: target))(?=/|[^A-Za-z0-9_.-]|$)"
            )
            result = expression.stringByReplacingMatches(
                in: result, range: NSRange(result.startIndex..., in: result),
                withTemplate: NSRegularExpression.escapedTemplate(for: local))
        }
        return result
    }

    /// Polls (every 50 ms, 30 s at most) until something on the service's port answers `PING`
    /// (with `PONG`, or `NOAUTH` when it wants a password) or the process exits.
    private func answers(_ service: Service, _ process: ChildProcess) async throws -> Bool {
        let client = RedisClient(
            endpoint: RedisEndpoint(transport: .tcp(host: "127.0.0.1", port: service.port!)),
            options: RedisClientOptions(poolSize: 1))
        defer { client.shutDown() }
        let deadline = ContinuousClock.now + .seconds(30)
        while ContinuousClock.now < deadline && process.isRunning {
            do {
                _ = try await client.send("PING")
                return true
            } catch RedisError.server(let error) where error.code == "NOAUTH" {
                return true
            } catch {
                try await Task.sleep(for: .milliseconds(50))
            }
        }
        return false
    }
}
