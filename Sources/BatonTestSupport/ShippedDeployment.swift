import Foundation

/// The Redis settings the deployment files ship (`docker-compose.yml`, `Deploy/redis/users.acl`),
/// read from those files so that tests run what ships and cannot drift from it.
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

    // MARK: - docker-compose.yml

    /// The arguments after `redis-server` in the `command:` of docker-compose.yml's `redis` service.
    ///
    /// Only the form the file uses is understood: one line `command: ["redis-server", "--flag",
    /// "value", ...]`, a YAML flow sequence of double-quoted strings (which is also a JSON array).
    /// - Throws: ``ReadError`` when the service, its `command:` line or the array is not found.
    public static func redisCommandArguments() throws -> [String] {
        let text = try String(contentsOf: composeFile, encoding: .utf8)
        let lines = text.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        guard
            let serviceLine = lines.firstIndex(where: {
                $0.trimmingCharacters(in: .whitespaces) == "redis:" && indentation(of: $0) > 0
            })
        else {
            throw ReadError(description: "\(composeFile.path): no `redis:` service")
        }
        let serviceIndent = indentation(of: lines[serviceLine])
        for line in lines[(serviceLine + 1)...] {
            let trimmed = line.trimmingCharacters(in: .whitespaces)
            if trimmed.isEmpty || trimmed.hasPrefix("#") { continue }
            if indentation(of: line) <= serviceIndent { break }
            guard trimmed.hasPrefix("command:") else { continue }
            let array = trimmed.dropFirst("command:".count).trimmingCharacters(in: .whitespaces)
            guard let words = try? JSONSerialization.jsonObject(with: Data(array.utf8)) as? [String],
                words.first == "redis-server"
            else {
                throw ReadError(
                    description:
                        "\(composeFile.path): the redis service's command is not a one-line [\"redis-server\", ...] array: \(trimmed)"
                )
            }
            return Array(words.dropFirst())
        }
        throw ReadError(description: "\(composeFile.path): the redis service has no `command:` line")
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

    private static func indentation(of line: String) -> Int {
        line.prefix { $0 == " " }.count
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
        var text = try String(contentsOf: aclFile, encoding: .utf8)
        for (user, password) in passwords {
            let placeholder = ">CHANGE-ME-\(user)"
            guard text.contains(placeholder) else {
                throw ReadError(description: "\(aclFile.path): no placeholder \(placeholder) for the user \(user)")
            }
            text = text.replacingOccurrences(of: placeholder, with: ">\(password)")
        }
        guard !text.contains("CHANGE-ME") else {
            throw ReadError(description: "\(aclFile.path): a CHANGE-ME placeholder is left; give every user a password")
        }
        if !text.hasSuffix("\n") { text += "\n" }
        text += extraLines.map { $0 + "\n" }.joined()
        let copy = directory.appendingPathComponent("users.acl")
        try text.write(to: copy, atomically: true, encoding: .utf8)
        return copy
    }
}
