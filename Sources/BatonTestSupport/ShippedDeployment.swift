import Foundation

/// The deployment files as shipped (`docker-compose.yml`, `Deploy/redis/users.acl`, the Sentinel
/// variant in `Deploy/sentinel/`), read from those files so that tests run what ships and cannot
/// drift from it.
public enum ShippedDeployment {
    /// Problems reading the deployment files, each naming the file and what was expected.
    public struct ReadError: Error, CustomStringConvertible {
        /// What is wrong, with the file's path.
        public let description: String

        /// Creates an error with its message.
        public init(description: String) {
            self.description = description
        }
    }

    /// The repository's root folder (found from this source file's path).
    public static var repositoryRoot: URL {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent()
    }

    /// `docker-compose.yml` at the repository root.
    public static var composeFile: URL { repositoryRoot.appendingPathComponent("docker-compose.yml") }

    /// `Deploy/redis/users.acl`.
    public static var aclFile: URL { repositoryRoot.appendingPathComponent("Deploy/redis/users.acl") }

    /// `Deploy/sentinel/docker-compose.yml`: Redis with Sentinel failover.
    public static var sentinelComposeFile: URL {
        repositoryRoot.appendingPathComponent("Deploy/sentinel/docker-compose.yml")
    }

    // MARK: - docker-compose.yml

    /// The arguments after `redis-server` in the `command:` of docker-compose.yml's `redis` service.
    /// - Throws: ``ReadError`` when the service or its command is not found, or the command does
    ///   not start with `redis-server`.
    public static func redisCommandArguments() throws -> [String] {
        let words = try composeService("redis", in: composeFile).command
        guard words.first == "redis-server" else {
            throw ReadError(
                description: "\(composeFile.path): the redis service's command does not run redis-server: \(words)")
        }
        return Array(words.dropFirst())
    }

    /// The shipped persistence settings: the `--appendonly` and `--appendfsync` options (with their
    /// values) of the shipped `redis-server` command, for a test server that must survive what
    /// the shipped one survives.
    /// - Throws: ``ReadError`` when the command cannot be read or lacks either option.
    public static func redisDurabilityArguments() throws -> [String] {
        let arguments = try redisCommandArguments()
        var selected: [String] = []
        for name in ["--appendonly", "--appendfsync"] {
            guard let index = arguments.firstIndex(of: name), index + 1 < arguments.count else {
                throw ReadError(description: "\(composeFile.path): the redis command has no \(name) VALUE")
            }
            selected += [name, arguments[index + 1]]
        }
        return selected
    }

    // MARK: - Compose files

    /// One service of a shipped compose file, as far as a test needs it to run the service as a
    /// local process: its command and what it mounts.
    public struct ComposeService: Sendable {
        /// A bind mount of a shipped file, or a named volume.
        public struct Mount: Sendable {
            /// The shipped file (resolved against the compose file's folder); `nil` for a named volume.
            public let file: URL?
            /// The named volume; `nil` for a bind mount.
            public let volume: String?
            /// Where the container sees it.
            public let target: String
        }

        /// The service's name, which is also its host name on the compose network.
        public let name: String
        /// The `command:` words.
        public let command: [String]
        /// The `volumes:` entries.
        public let mounts: [Mount]
    }

    /// Reads the service `name` of the compose file `file`.
    ///
    /// Only the forms the shipped files use are understood: under `services:`, the service's own
    /// `command:` on one line as a YAML flow sequence of double-quoted strings (which is also a
    /// JSON array), and its own `volumes:` as a block list of `- SOURCE:TARGET[:ro]`. Keys merged
    /// from an anchor (`<<: *name`) are not read: the shipped files keep commands and volumes out
    /// of their anchors.
    /// - Throws: ``ReadError`` when the service or its command is not found or not in that form.
    public static func composeService(_ name: String, in file: URL) throws -> ComposeService {
        let text = try String(contentsOf: file, encoding: .utf8)
        let lines = text.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        guard let servicesLine = lines.firstIndex(where: { $0.hasPrefix("services:") }),
            let serviceLine = lines[servicesLine...].firstIndex(where: {
                $0.trimmingCharacters(in: .whitespaces) == "\(name):" && indentation(of: $0) > 0
            })
        else {
            throw ReadError(description: "\(file.path): no `\(name):` service under `services:`")
        }
        let serviceIndent = indentation(of: lines[serviceLine])
        var command: [String]?
        var mounts: [ComposeService.Mount] = []
        var inVolumes = false
        var keyIndent: Int?
        for line in lines[(serviceLine + 1)...] {
            let trimmed = line.trimmingCharacters(in: .whitespaces)
            if trimmed.isEmpty || trimmed.hasPrefix("#") { continue }
            let indent = indentation(of: line)
            if indent <= serviceIndent { break }
            keyIndent = keyIndent ?? indent
            if indent == keyIndent {
                inVolumes = trimmed == "volumes:"
                if trimmed.hasPrefix("command:") {
                    let array = trimmed.dropFirst("command:".count).trimmingCharacters(in: .whitespaces)
                    guard let words = try? JSONSerialization.jsonObject(with: Data(array.utf8)) as? [String] else {
                        throw ReadError(
                            description:
                                "\(file.path): the \(name) service's command is not a one-line [\"...\"] array: \(trimmed)"
                        )
                    }
                    command = words
                }
            } else if inVolumes, trimmed.hasPrefix("- ") {
                mounts.append(try mount(String(trimmed.dropFirst(2)), service: name, in: file))
            }
        }
        guard let command else {
            throw ReadError(description: "\(file.path): the \(name) service has no `command:` line")
        }
        return ComposeService(name: name, command: command, mounts: mounts)
    }

    /// One `SOURCE:TARGET[:MODE]` volume entry.
    private static func mount(_ entry: String, service: String, in file: URL) throws -> ComposeService.Mount {
        let parts = entry.split(separator: ":", omittingEmptySubsequences: false).map(String.init)
        guard parts.count == 2 || parts.count == 3, !parts[0].isEmpty, parts[1].hasPrefix("/") else {
            throw ReadError(
                description: "\(file.path): the \(service) service's volume `\(entry)` is not SOURCE:TARGET[:MODE]")
        }
        if parts[0].hasPrefix(".") || parts[0].hasPrefix("/") {
            let source = URL(fileURLWithPath: parts[0], relativeTo: file.deletingLastPathComponent())
                .standardizedFileURL
            return .init(file: source, volume: nil, target: parts[1])
        }
        return .init(file: nil, volume: parts[0], target: parts[1])
    }

    private static func indentation(of line: String) -> Int {
        line.prefix { $0 == " " }.count
    }

    // MARK: - Placeholders

    /// `text` with every `CHANGE-ME-NAME` placeholder (NAME: the longest run of letters, digits and
    /// `-`) replaced by `values[NAME]`, and the names it replaced.
    /// - Throws: ``ReadError`` naming `file` when a placeholder has no value.
    public static func fillingPlaceholders(in text: String, values: [String: String], file: URL) throws
        -> (text: String, names: Set<String>)
    {
        let expression = try NSRegularExpression(pattern: "CHANGE-ME-([A-Za-z0-9-]+)")
        var result = ""
        var names: Set<String> = []
        var rest = text.startIndex
        for match in expression.matches(in: text, range: NSRange(text.startIndex..., in: text)) {
            guard let whole = Range(match.range, in: text), let nameRange = Range(match.range(at: 1), in: text) else {
                continue
            }
            let name = String(text[nameRange])
            guard let value = values[name] else {
                throw ReadError(description: "\(file.path): no value for the placeholder CHANGE-ME-\(name)")
            }
            names.insert(name)
            result += text[rest..<whole.lowerBound] + value
            rest = whole.upperBound
        }
        result += text[rest...]
        return (result, names)
    }

    // MARK: - users.acl

    /// Copies the shipped users.acl into `directory`, replacing each user's `>CHANGE-ME-<user>`
    /// placeholder with `passwords[user]`, and appends `extraLines` (a test's own users).
    /// - Returns: the copy's path, for `redis-server --aclfile`.
    /// - Throws: ``ReadError`` when a placeholder is left without a password, or a password is
    ///   given for a user the file does not have.
    public static func aclFileCopy(in directory: URL, passwords: [String: String], extraLines: [String] = []) throws
        -> URL
    {
        let shipped = try String(contentsOf: aclFile, encoding: .utf8)
        let filled = try fillingPlaceholders(in: shipped, values: passwords, file: aclFile)
        var text = filled.text
        if let user = Set(passwords.keys).subtracting(filled.names).sorted().first {
            throw ReadError(description: "\(aclFile.path): no placeholder >CHANGE-ME-\(user) for the user \(user)")
        }
        if !text.hasSuffix("\n") { text += "\n" }
        text += extraLines.map { $0 + "\n" }.joined()
        let copy = directory.appendingPathComponent("users.acl")
        try text.write(to: copy, atomically: true, encoding: .utf8)
        return copy
    }
}
