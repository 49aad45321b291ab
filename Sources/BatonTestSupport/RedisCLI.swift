import Foundation

/// `redis-cli`, Redis's own client, run to completion against a server on 127.0.0.1: how test
/// topologies check servers independently of Baton's client (which may be the code under test,
/// and does not speak TLS, Sentinel or Cluster yet).
///
/// Passwords go to redis-cli through `REDISCLI_AUTH`, never through its arguments.
///
/// ```swift
/// let role = try RedisCLI.info(port: port, section: "replication")["role"]   // "master"
/// let slot = try RedisCLI.reply(port: port, ["CLUSTER", "KEYSLOT", "{svc}:a"]) as? Int
/// ```
public enum RedisCLI {
    /// How redis-cli connects over TLS: `--tls` and the options below.
    public struct TLS: Sendable {
        /// `--cacert`: the CA bundle the server's certificate is checked against.
        public var caCertificate: String?
        /// `--cert`: a client certificate, for servers that require one.
        public var certificate: String?
        /// `--key`: the client certificate's private key.
        public var privateKey: String?
        /// `--sni`: the server name sent in the handshake.
        public var serverName: String?
        /// `--insecure`: skip certificate checks.
        public var insecure: Bool

        /// TLS options; every one is off unless given.
        public init(
            caCertificate: String? = nil, certificate: String? = nil, privateKey: String? = nil,
            serverName: String? = nil, insecure: Bool = false
        ) {
            self.caCertificate = caCertificate
            self.certificate = certificate
            self.privateKey = privateKey
            self.serverName = serverName
            self.insecure = insecure
        }

        var arguments: [String] {
            var arguments = ["--tls"]
            if let caCertificate { arguments += ["--cacert", caCertificate] }
            if let certificate { arguments += ["--cert", certificate] }
            if let privateKey { arguments += ["--key", privateKey] }
            if let serverName { arguments += ["--sni", serverName] }
            if insecure { arguments.append("--insecure") }
            return arguments
        }
    }

    /// Runs `redis-cli -h 127.0.0.1 -p PORT [options] COMMAND...` and returns what it printed,
    /// whatever it was (an error reply or a refused connection included).
    /// - Parameters:
    ///   - command: the command and its arguments, each one word (no shell quoting).
    ///   - tls: connect over TLS with these options (default: plain TCP).
    ///   - username: `--user`, for an ACL user (its password in `password`).
    ///   - password: sent through `REDISCLI_AUTH`.
    ///   - json: `--json` output (RESP3 replies as JSON).
    ///   - timeout: seconds before redis-cli is killed (default 10).
    /// - Throws: ``TopologyError`` when redis-cli is missing or does not finish in time.
    public static func run(
        port: Int, _ command: [String], tls: TLS? = nil, username: String? = nil, password: String? = nil,
        json: Bool = false, timeout: Double = 10
    ) throws -> ProgramOutput {
        var arguments = ["-h", "127.0.0.1", "-p", String(port)]
        arguments += tls?.arguments ?? []
        if let username { arguments += ["--user", username] }
        if json { arguments.append("--json") }
        var environment: [String: String] = [:]
        if let password { environment["REDISCLI_AUTH"] = password }
        return try InstalledProgram.run("redis-cli", arguments + command, environment: environment, timeout: timeout)
    }

    /// Sends `command` and returns the reply as JSON values: `String`, `Int`, `Double`, `Bool`,
    /// `[Any]`, `[String: Any]`, or `nil` for a null reply.
    /// - Throws: ``TopologyError`` with the server's words for an error reply, or redis-cli's for
    ///   a failed connection.
    public static func reply(
        port: Int, _ command: [String], tls: TLS? = nil, username: String? = nil, password: String? = nil
    ) throws -> Any? {
        let text = try checkedOutput(port: port, command, tls: tls, username: username, password: password)
        guard let value = try? JSONSerialization.jsonObject(with: Data(text.utf8), options: [.fragmentsAllowed])
        else {
            throw TopologyError("redis-cli -p \(port) \(command.joined(separator: " ")): not JSON: \(text)")
        }
        return value is NSNull ? nil : value
    }

    /// The reply to `command` as text: a string reply without JSON quoting, a verbatim reply
    /// (`INFO`, `CLUSTER NODES`, `CLUSTER INFO`) as the server wrote it.
    /// - Throws: ``TopologyError`` for an error reply or a failed connection.
    public static func text(
        port: Int, _ command: [String], tls: TLS? = nil, username: String? = nil, password: String? = nil
    ) throws -> String {
        let text = try checkedOutput(port: port, command, tls: tls, username: username, password: password)
        // Verbatim replies are printed as they are, even with --json; other strings are quoted.
        if text.hasPrefix("\""),
            let string = try? JSONSerialization.jsonObject(with: Data(text.utf8), options: [.fragmentsAllowed])
                as? String
        {
            return string
        }
        return text
    }

    /// The `name:value` lines of a reply such as `INFO` or `CLUSTER INFO` as a dictionary
    /// (`role` → `master`, ...); `#` section titles are skipped.
    /// - Throws: ``TopologyError`` for an error reply or a failed connection.
    public static func fields(
        port: Int, _ command: [String], tls: TLS? = nil, username: String? = nil, password: String? = nil
    ) throws -> [String: String] {
        let text = try text(port: port, command, tls: tls, username: username, password: password)
        var fields: [String: String] = [:]
        for line in text.split(whereSeparator: \.isNewline) where !line.hasPrefix("#") {
            guard let colon = line.firstIndex(of: ":") else { continue }
            fields[String(line[..<colon])] = String(line[line.index(after: colon)...])
        }
        return fields
    }

    /// `INFO section` as a dictionary (see ``fields(port:_:tls:username:password:)``).
    /// - Throws: ``TopologyError`` for an error reply or a failed connection.
    public static func info(
        port: Int, section: String = "", tls: TLS? = nil, username: String? = nil, password: String? = nil
    ) throws -> [String: String] {
        try fields(
            port: port, ["INFO"] + (section.isEmpty ? [] : [section]), tls: tls, username: username, password: password)
    }

    /// The output of `command` with `--json`, after checking it is neither a failed connection
    /// nor an error reply.
    private static func checkedOutput(
        port: Int, _ command: [String], tls: TLS?, username: String?, password: String?
    ) throws -> String {
        let result = try run(port: port, command, tls: tls, username: username, password: password, json: true)
        let text = result.output.trimmingCharacters(in: .whitespacesAndNewlines)
        // redis-cli exits with 0 after an error reply and prints it as `error:"..."` in JSON mode.
        guard result.succeeded, !text.hasPrefix("error:") else {
            throw TopologyError("redis-cli -p \(port) \(command.joined(separator: " ")) failed: \(text)")
        }
        return text
    }
}
