/// Where a Redis server is and how to log in to it, parsed from a Redis URL.
///
/// Accepted forms:
/// - `redis://[user[:password]@]host[:port][/db]` (port defaults to 6379, db to 0; IPv6 hosts in brackets)
/// - `unix://[user[:password]@]/path/to/redis.sock[?db=N]`
///
/// User name and password are percent-decoded. The password never appears in ``description``.
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
        let rest: Substring
        let isUnix: Bool
        if url.hasPrefix("redis://") {
            rest = url.dropFirst("redis://".count)
            isUnix = false
        } else if url.hasPrefix("unix://") {
            rest = url.dropFirst("unix://".count)
            isUnix = true
        } else {
            throw invalid("the scheme must be redis:// or unix:// (rediss:// needs TLS, which Debian's hiredis 0.14 lacks)")
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
                    throw invalid("the query part '\(pair)' is not name=value")
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
            guard let number = Int(db), number >= 0 else { throw invalid("db must be a non-negative integer, not '\(db)'") }
            database = number
        }

        if isUnix {
            guard remainder.hasPrefix("/"), remainder.count > 1 else {
                throw invalid("a unix:// URL needs an absolute socket path, as in unix:///run/redis/redis.sock")
            }
            self.init(transport: .unix(path: String(remainder)), username: username, password: password, database: database)
            return
        }

        var hostPort = remainder
        if let slash = remainder.firstIndex(of: "/") {
            hostPort = remainder[..<slash]
            let dbText = remainder[remainder.index(after: slash)...]
            if !dbText.isEmpty {
                guard let number = Int(dbText), number >= 0 else {
                    throw invalid("the path must be a database number, not '/\(dbText)'")
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
            if after.hasPrefix(":") { portText = after.dropFirst() } else if !after.isEmpty {
                throw invalid("unexpected '\(after)' after the IPv6 host")
            }
        } else if let colon = hostPort.lastIndex(of: ":") {
            host = hostPort[..<colon]
            portText = hostPort[hostPort.index(after: colon)...]
        } else {
            host = hostPort
        }
        guard !host.isEmpty else { throw invalid("the host is missing") }
        var port = 6379
        if let portText {
            guard let number = Int(portText), (1...65535).contains(number) else {
                throw invalid("the port must be 1-65535, not '\(portText)'")
            }
            port = number
        }
        self.init(transport: .tcp(host: String(host), port: port), username: username, password: password, database: database)
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

    /// Hides whatever sits between `//` and `@` so that a URL can go into an error message.
    static func redacted(_ url: String) -> String {
        guard let schemeEnd = url.range(of: "://"), let at = url.range(of: "@", options: .backwards),
              at.lowerBound > schemeEnd.upperBound else { return url }
        return url[..<schemeEnd.upperBound] + "***" + url[at.lowerBound...]
    }

    private static func percentDecoded(_ text: Substring) -> String? {
        var bytes: [UInt8] = []
        var iterator = Array(text.utf8).makeIterator()
        while let byte = iterator.next() {
            if byte == UInt8(ascii: "%") {
                guard let high = iterator.next(), let low = iterator.next(),
                      let value = UInt8(String(decoding: [high, low], as: UTF8.self), radix: 16) else { return nil }
                bytes.append(value)
            } else {
                bytes.append(byte)
            }
        }
        return String(validating: bytes, as: UTF8.self)
    }
}
