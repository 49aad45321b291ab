import BatonSupport

/// Where a Redis server is and how to log in to it, parsed from a Redis URL.
///
/// Accepted forms:
/// - `redis://[user[:password]@]host[:port][/db]` (port defaults to 6379, db to 0; IPv6 hosts in brackets)
/// - `unix://[user[:password]@]/path/to/redis.sock[?db=N]`
///
/// User name and password are percent-decoded. The password never appears in ``description``;
/// a URL as the user typed it goes into messages only through ``redacted(_:)``.
public struct RedisEndpoint: Sendable, Hashable, CustomStringConvertible {
    /// How to reach the server.
    public enum Transport: Sendable, Hashable {
        /// A TCP host and port.
        case tcp(host: String, port: Int)
        /// A Unix domain socket path.
        case unix(path: String)
    }

    /// How to reach the server.
    public var transport: Transport
    /// The ACL user name for `AUTH user password`; `nil` uses `AUTH password` (the `default` user).
    public var username: String?
    /// The password; `nil` sends no `AUTH`.
    public var password: String?
    /// The database number selected after connecting (default 0).
    public var database: Int

    /// Creates an endpoint from its parts.
    public init(transport: Transport, username: String? = nil, password: String? = nil, database: Int = 0) {
        self.transport = transport
        self.username = username
        self.password = password
        self.database = database
    }

    /// Parses a Redis URL.
    /// - Throws: ``RedisError/invalidURL(_:reason:)`` naming what is wrong.
    public init(url: String) throws {
        func invalid(_ reason: String) -> RedisError { .invalidURL(Self.redacted(url), reason: reason) }
        // A reason may quote a piece of the URL only when redaction hides nothing in it: a
        // password with an unencoded '/' or '?' would otherwise come back as "the port".
        let quotable = Self.redacted(url) == url
        func quoted(_ piece: some StringProtocol, prefix: String = " ") -> String {
            quotable ? "\(prefix)'\(piece)'" : ""
        }
        let rest: Substring
        let isUnix: Bool
        if url.hasPrefix("redis://") {
            rest = url.dropFirst("redis://".count)
            isUnix = false
        } else if url.hasPrefix("unix://") {
            rest = url.dropFirst("unix://".count)
            isUnix = true
        } else {
            throw invalid(
                "the scheme must be redis:// or unix:// (rediss:// needs TLS, which Debian's hiredis 0.14 lacks)")
        }

        var remainder = rest
        var username: String?
        var password: String?
        // The credentials end at the last '@' before the path: passwords may contain '@' when encoded.
        let pathStart = isUnix ? remainder.firstIndex(of: "/") : remainder.firstIndex(where: { $0 == "/" || $0 == "?" })
        let authorityEnd = pathStart ?? remainder.endIndex
        if let at = remainder[..<authorityEnd].lastIndex(of: "@") {
            let credentials = remainder[..<at]
            remainder = remainder[remainder.index(after: at)...]
            if let colon = credentials.firstIndex(of: ":") {
                let user = credentials[..<colon]
                guard let decodedUser = Self.percentDecoded(user),
                    let decodedPassword = Self.percentDecoded(credentials[credentials.index(after: colon)...])
                else { throw invalid("the user name or password has a bad %-escape") }
                username = user.isEmpty ? nil : decodedUser
                password = decodedPassword
            } else {
                guard let decodedUser = Self.percentDecoded(credentials) else {
                    throw invalid("the user name has a bad %-escape")
                }
                // `redis://secret@host` is the common "password only" spelling (redis-py, Jedis).
                password = decodedUser.isEmpty ? nil : decodedUser
            }
        }

        var query: [String: String] = [:]
        if let questionMark = remainder.firstIndex(of: "?") {
            for pair in remainder[remainder.index(after: questionMark)...].split(separator: "&") {
                let parts = pair.split(separator: "=", maxSplits: 1)
                guard parts.count == 2, let value = Self.percentDecoded(parts[1]) else {
                    throw invalid("the query part\(quoted(pair)) is not name=value")
                }
                query[String(parts[0])] = value
            }
            remainder = remainder[..<questionMark]
        }
        for name in query.keys where !["db", "password"].contains(name) {
            throw invalid("unknown query parameter '\(name)' (known: db, password)")
        }
        if let queryPassword = query["password"] { password = queryPassword }

        var database = 0
        if let db = query["db"] {
            guard let number = Int(db), number >= 0 else {
                throw invalid("db must be a non-negative integer\(quoted(db, prefix: ", not "))")
            }
            database = number
        }

        if isUnix {
            guard remainder.hasPrefix("/"), remainder.count > 1 else {
                throw invalid("a unix:// URL needs an absolute socket path, as in unix:///run/redis/redis.sock")
            }
            self.init(
                transport: .unix(path: String(remainder)), username: username, password: password, database: database)
            return
        }

        var hostPort = remainder
        if let slash = remainder.firstIndex(of: "/") {
            hostPort = remainder[..<slash]
            let dbText = remainder[remainder.index(after: slash)...]
            if !dbText.isEmpty {
                guard let number = Int(dbText), number >= 0 else {
                    throw invalid("the path must be a database number\(quoted("/" + dbText, prefix: ", not "))")
                }
                database = number
            }
        }
        var host: Substring
        var portText: Substring?
        if hostPort.hasPrefix("[") {
            guard let close = hostPort.firstIndex(of: "]") else { throw invalid("an IPv6 host needs a closing ']'") }
            host = hostPort[hostPort.index(after: hostPort.startIndex)..<close]
            let after = hostPort[hostPort.index(after: close)...]
            if after.hasPrefix(":") {
                portText = after.dropFirst()
            } else if !after.isEmpty {
                throw invalid("unexpected characters\(quoted(after)) after the IPv6 host")
            }
        } else if let colon = hostPort.lastIndex(of: ":") {
            host = hostPort[..<colon]
            portText = hostPort[hostPort.index(after: colon)...]
        } else {
            host = hostPort
        }
        guard !host.isEmpty else { throw invalid("the host is missing") }
        var port = BatonDefaults.redisPort
        if let portText {
            guard let number = Int(portText), (1...65535).contains(number) else {
                throw invalid("the port must be 1-65535\(quoted(portText, prefix: ", not "))")
            }
            port = number
        }
        self.init(
            transport: .tcp(host: String(host), port: port), username: username, password: password, database: database)
    }

    /// The address alone (`127.0.0.1:6379`, `/run/redis.sock`), for error messages.
    public var address: String {
        switch transport {
        case .tcp(let host, let port): return host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)"
        case .unix(let path): return path
        }
    }

    /// The URL with the password replaced by `***`.
    public var description: String {
        var credentials = ""
        if let username { credentials = username }
        if password != nil { credentials += ":***" }
        if !credentials.isEmpty { credentials += "@" }
        switch transport {
        case .tcp: return "redis://\(credentials)\(address)/\(database)"
        case .unix(let path): return "unix://\(credentials)\(path)?db=\(database)"
        }
    }

    /// `url` with everything that could be a secret replaced by `***`, for errors and logs.
    ///
    /// This is the one function through which a Redis URL (or any URL-shaped string a user gave
    /// as one) reaches a message. It hides:
    /// - the whole user-info part, between `//` and the last `@` (`redis://pw@host` spells a
    ///   password with no user name, so the user name is hidden too);
    /// - the value of every query parameter except a numeric `db` (`password=`, `pass=`,
    ///   `token=`, `key=`, and anything else: a list of dangerous names would always be
    ///   incomplete), and a query part without `=` entirely;
    /// - a `#fragment`;
    /// - everything after the scheme when a `?` or `#` comes before the last `@` (the `@` may
    ///   then sit inside a query value);
    /// - the whole string when it has no `scheme://` (it may be a bare password).
    ///
    /// Idempotent: redacting a redacted URL changes nothing. Parameter names are kept, so
    /// `unix:///s.sock?password=x` becomes `unix:///s.sock?password=***`.
    public static func redacted(_ url: String) -> String {
        guard let schemeEnd = url.range(of: "://") else { return url.isEmpty ? url : "***" }
        let scheme = String(url[..<schemeEnd.upperBound])
        var rest = url[schemeEnd.upperBound...]
        var credentials = ""
        if let at = rest.lastIndex(of: "@") {
            if let delimiter = rest.firstIndex(where: { $0 == "?" || $0 == "#" }), delimiter < at {
                return scheme + "***"
            }
            credentials = "***@"
            rest = rest[rest.index(after: at)...]
        }
        var fragment = ""
        if let hash = rest.firstIndex(of: "#") {
            fragment = "#***"
            rest = rest[..<hash]
        }
        guard let questionMark = rest.firstIndex(of: "?") else { return scheme + credentials + rest + fragment }
        let query = rest[rest.index(after: questionMark)...].split(separator: "&", omittingEmptySubsequences: false).map
        { pair -> String in
            guard let equals = pair.firstIndex(of: "=") else { return pair.isEmpty ? "" : "***" }
            let name = pair[..<equals]
            let value = pair[pair.index(after: equals)...]
            if name == "db" && !value.isEmpty && value.allSatisfy({ $0.isASCII && $0.isNumber }) { return String(pair) }
            return name + "=***"
        }
        return scheme + credentials + rest[...questionMark] + query.joined(separator: "&") + fragment
    }

    /// Whether `url` holds something ``redacted(_:)`` would hide: a user-info part (a password,
    /// or a user name that `redis://NAME@host` reads as one), a query parameter other than a
    /// numeric `db` (`?password=`), or a fragment. A string without `scheme://` is not a URL and
    /// returns `false` (parsing it fails with its own error).
    public static func containsCredentials(_ url: String) -> Bool {
        url.contains("://") && redacted(url) != url
    }

    private static func percentDecoded(_ text: Substring) -> String? {
        var bytes: [UInt8] = []
        var iterator = Array(text.utf8).makeIterator()
        while let byte = iterator.next() {
            if byte == UInt8(ascii: "%") {
                guard let high = iterator.next(), let low = iterator.next(),
                    let value = UInt8(String(decoding: [high, low], as: UTF8.self), radix: 16)
                else { return nil }
                bytes.append(value)
            } else {
                bytes.append(byte)
            }
        }
        return String(validating: bytes, as: UTF8.self)
    }
}
