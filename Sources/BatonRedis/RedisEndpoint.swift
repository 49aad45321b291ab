import BatonSupport

/// Where Redis is and how to log in to it, parsed from a Redis URL: one server, a master found
/// through Sentinel, or a Redis Cluster.
///
/// Accepted forms (IPv6 hosts in brackets; user name and password percent-decoded):
/// - `redis://[user[:password]@]host[:port][/db]` (port 6379, db 0 by default)
/// - `rediss://...` the same over TLS, with the `tls_*` query parameters of ``RedisTLSOptions``
/// - `unix://[user[:password]@]/path/to/redis.sock[?db=N]`
/// - `redis-sentinel://[user[:password]@]host1[:26379][,host2[:port]...][/db]#master-name`: the
///   credentials are the master's; the Sentinels' own come from `BATON_SENTINEL_USER` and
///   `BATON_SENTINEL_PASSWORD`. `rediss-sentinel://`, or any `tls_*` parameter, speaks TLS to
///   Sentinels and master alike.
/// - `redis-cluster://[user[:password]@]host:port[,host:port...]`: seed nodes of a Redis Cluster
///   (database 0 only); `rediss-cluster://` or any `tls_*` parameter for TLS.
///
/// The password never appears in ``description``; a URL as the user typed it goes into messages
/// only through ``redacted(_:)``.
public struct RedisEndpoint: Sendable, Hashable, CustomStringConvertible {
    /// How to reach one server.
    public enum Transport: Sendable, Hashable {
        /// A TCP host and port.
        case tcp(host: String, port: Int)
        /// A Unix domain socket path.
        case unix(path: String)
    }

    /// Which servers the URL names and how the one to talk to is found.
    public enum Topology: Sendable, Hashable {
        /// One server.
        case standalone(Transport)
        /// The master that these Sentinels name `masterName`, found again after every failover.
        case sentinel(sentinels: [Transport], masterName: String)
        /// A Redis Cluster reached through these seed nodes; commands go to the node that serves
        /// their keys' slot.
        case cluster(seeds: [Transport])
    }

    /// Which servers to talk to.
    public var topology: Topology
    /// The ACL user name for `AUTH user password`; `nil` uses `AUTH password` (the `default` user).
    public var username: String?
    /// The password; `nil` sends no `AUTH`.
    public var password: String?
    /// The database number selected after connecting (default 0).
    public var database: Int
    /// TLS settings; `nil` for plain TCP.
    public var tls: RedisTLSOptions?

    /// Creates an endpoint for one server.
    public init(
        transport: Transport, username: String? = nil, password: String? = nil, database: Int = 0,
        tls: RedisTLSOptions? = nil
    ) {
        self.init(
            topology: .standalone(transport), username: username, password: password, database: database, tls: tls)
    }

    /// Creates an endpoint from its parts.
    public init(
        topology: Topology, username: String? = nil, password: String? = nil, database: Int = 0,
        tls: RedisTLSOptions? = nil
    ) {
        self.topology = topology
        self.username = username
        self.password = password
        self.database = database
        self.tls = tls
    }

    /// The server, for a single-server URL; `nil` for Sentinel and Cluster URLs.
    public var transport: Transport? {
        if case .standalone(let transport) = topology { return transport }
        return nil
    }

    /// The same credentials, database and TLS settings, for the one server at `transport` (a
    /// master that Sentinel named, a Cluster node).
    public func server(at transport: Transport) -> RedisEndpoint {
        var copy = self
        copy.topology = .standalone(transport)
        return copy
    }

    private enum Scheme {
        case server, unix, sentinel, cluster
    }

    private static let schemes: [(prefix: String, scheme: Scheme, tls: Bool)] = [
        ("redis://", .server, false), ("rediss://", .server, true), ("unix://", .unix, false),
        ("redis-sentinel://", .sentinel, false), ("rediss-sentinel://", .sentinel, true),
        ("redis-cluster://", .cluster, false), ("rediss-cluster://", .cluster, true),
    ]

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
        guard let (prefix, scheme, schemeMeansTLS) = Self.schemes.first(where: { url.hasPrefix($0.prefix) }) else {
            throw invalid("the scheme must be one of \(BatonDefaults.redisURLSchemes.joined(separator: ", "))")
        }
        let isUnix = scheme == .unix

        var remainder = url.dropFirst(prefix.count)
        var username: String?
        var password: String?
        // The credentials end at the last '@' before the path: passwords may contain '@' when encoded.
        if let userInfo = RedisURLCredentials.userInfoRange(in: url) {
            let credentials = url[userInfo]
            remainder = url[url.index(after: userInfo.upperBound)...]
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

        var masterName: String?
        if let hash = remainder.firstIndex(of: "#") {
            guard scheme == .sentinel else {
                throw invalid("a #fragment is only meaningful in a redis-sentinel:// URL, where it names the master")
            }
            guard let name = Self.percentDecoded(remainder[remainder.index(after: hash)...]), !name.isEmpty else {
                throw invalid("the master name after '#' is empty or has a bad %-escape")
            }
            masterName = name
            remainder = remainder[..<hash]
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
        let known = ["db", "password"] + RedisTLSOptions.parameterNames
        for name in query.keys.sorted() where !known.contains(name) {
            throw invalid("unknown query parameter '\(name)' (known: \(known.joined(separator: ", ")))")
        }
        if let queryPassword = query["password"] { password = queryPassword }

        var database = 0
        if let db = query["db"] {
            guard let number = Int(db), number >= 0 else {
                throw invalid("db must be a non-negative integer\(quoted(db, prefix: ", not "))")
            }
            database = number
        }

        let tls = try Self.tlsOptions(
            query, schemeMeansTLS: schemeMeansTLS, scheme: scheme, prefix: prefix, invalid: invalid)

        if isUnix {
            guard remainder.hasPrefix("/"), remainder.count > 1 else {
                throw invalid("a unix:// URL needs an absolute socket path, as in unix:///run/redis/redis.sock")
            }
            self.init(
                transport: .unix(path: String(remainder)), username: username, password: password, database: database)
            return
        }

        var hostList = remainder
        if let slash = remainder.firstIndex(of: "/") {
            hostList = remainder[..<slash]
            let dbText = remainder[remainder.index(after: slash)...]
            if !dbText.isEmpty {
                guard let number = Int(dbText), number >= 0 else {
                    throw invalid("the path must be a database number\(quoted("/" + dbText, prefix: ", not "))")
                }
                database = number
            }
        }
        let defaultPort = scheme == .sentinel ? BatonDefaults.sentinelPort : BatonDefaults.redisPort
        var hosts: [Transport] = []
        for hostPort in hostList.split(separator: ",", omittingEmptySubsequences: false) {
            hosts.append(try Self.parseHost(hostPort, defaultPort: defaultPort, quoted: quoted, invalid: invalid))
        }
        if let tls, tls.insecure {
            for case .tcp(let host, _) in hosts where !HostNames.isLoopback(host) {
                throw invalid(
                    "tls_insecure=true turns off certificate checks and is accepted only for loopback hosts, not\(quoted(host))"
                )
            }
        }

        let topology: Topology
        switch scheme {
        case .server:
            guard hosts.count == 1 else {
                throw invalid(
                    "a \(prefix) URL names one server; for several, use redis-sentinel:// or redis-cluster://")
            }
            topology = .standalone(hosts[0])
        case .sentinel:
            guard let masterName else {
                throw invalid("a redis-sentinel:// URL ends with #master-name, the name the Sentinels monitor")
            }
            topology = .sentinel(sentinels: hosts, masterName: masterName)
        case .cluster:
            guard database == 0 else { throw invalid("a Redis Cluster has only database 0") }
            topology = .cluster(seeds: hosts)
        case .unix:
            preconditionFailure("handled above")
        }
        self.init(topology: topology, username: username, password: password, database: database, tls: tls)
    }

    private static func parseHost(
        _ hostPort: Substring, defaultPort: Int, quoted: (Substring, String) -> String,
        invalid: (String) -> RedisError
    ) throws -> Transport {
        var host: Substring
        var portText: Substring?
        if hostPort.hasPrefix("[") {
            guard let close = hostPort.firstIndex(of: "]") else { throw invalid("an IPv6 host needs a closing ']'") }
            host = hostPort[hostPort.index(after: hostPort.startIndex)..<close]
            let after = hostPort[hostPort.index(after: close)...]
            if after.hasPrefix(":") {
                portText = after.dropFirst()
            } else if !after.isEmpty {
                throw invalid("unexpected characters\(quoted(after, " ")) after the IPv6 host")
            }
        } else if let colon = hostPort.lastIndex(of: ":") {
            host = hostPort[..<colon]
            portText = hostPort[hostPort.index(after: colon)...]
        } else {
            host = hostPort
        }
        guard !host.isEmpty else { throw invalid("the host is missing") }
        var port = defaultPort
        if let portText {
            guard let number = Int(portText), (1...65535).contains(number) else {
                throw invalid("the port must be 1-65535\(quoted(portText, ", not "))")
            }
            port = number
        }
        return .tcp(host: String(host), port: port)
    }

    private static func tlsOptions(
        _ query: [String: String], schemeMeansTLS: Bool, scheme: Scheme, prefix: String,
        invalid: (String) -> RedisError
    ) throws -> RedisTLSOptions? {
        let given = RedisTLSOptions.parameterNames.filter { query[$0] != nil }
        guard schemeMeansTLS || !given.isEmpty else { return nil }
        if !schemeMeansTLS && (scheme == .server || scheme == .unix) {
            throw invalid("\(given.joined(separator: ", ")) need TLS: write rediss:// instead of \(prefix)")
        }
        for name in given where query[name]!.isEmpty { throw invalid("\(name) is empty") }
        var insecure = false
        if let text = query["tls_insecure"] {
            guard text == "true" || text == "false" else { throw invalid("tls_insecure must be true or false") }
            insecure = text == "true"
        }
        if (query["tls_cert_file"] == nil) != (query["tls_key_file"] == nil) {
            throw invalid("mutual TLS needs both tls_cert_file and tls_key_file")
        }
        return RedisTLSOptions(
            caFile: query["tls_ca_file"], caDirectory: query["tls_ca_dir"], certificateFile: query["tls_cert_file"],
            keyFile: query["tls_key_file"], serverName: query["tls_server_name"], insecure: insecure)
    }

    /// Where the server is, for messages: `127.0.0.1:6379`, `/run/redis.sock`, `master 'mymaster'
    /// (Sentinels a:26379,b:26379)`, `Redis Cluster (seeds a:7000,b:7001)`.
    public var address: String {
        switch topology {
        case .standalone(let transport):
            return Self.address(of: transport)
        case .sentinel(let sentinels, let masterName):
            return "master '\(masterName)' (Sentinels \(sentinels.map(Self.address(of:)).joined(separator: ",")))"
        case .cluster(let seeds):
            return "Redis Cluster (seeds \(seeds.map(Self.address(of:)).joined(separator: ",")))"
        }
    }

    /// One server's address: `host:port` (`[::1]:6379` for IPv6) or the socket path.
    public static func address(of transport: Transport) -> String {
        switch transport {
        case .tcp(let host, let port): return host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)"
        case .unix(let path): return path
        }
    }

    /// The URL with the password replaced by `***` (TLS parameters are not repeated).
    public var description: String {
        var credentials = ""
        if let username { credentials = username }
        if password != nil { credentials += ":***" }
        if !credentials.isEmpty { credentials += "@" }
        let secure = tls == nil ? "" : "s"
        func hosts(_ list: [Transport]) -> String { list.map(Self.address(of:)).joined(separator: ",") }
        switch topology {
        case .standalone(.tcp):
            return "redis\(secure)://\(credentials)\(address)/\(database)"
        case .standalone(.unix(let path)):
            return "unix://\(credentials)\(path)?db=\(database)"
        case .sentinel(let sentinels, let masterName):
            return "redis\(secure)-sentinel://\(credentials)\(hosts(sentinels))/\(database)#\(masterName)"
        case .cluster(let seeds):
            return "redis\(secure)-cluster://\(credentials)\(hosts(seeds))"
        }
    }

    /// `url` with everything that could be a secret replaced by `***`, for errors and logs.
    ///
    /// This is the one function through which a Redis URL (or any URL-shaped string a user gave
    /// as one) reaches a message. It hides:
    /// - the whole user-info part, between `//` and the last `@` (`redis://pw@host` spells a
    ///   password with no user name, so the user name is hidden too);
    /// - the value of every query parameter except a numeric `db` and the `tls_*` parameters (file
    ///   paths and names) (`password=`, `pass=`, `token=`, `key=`, and anything else: a list of
    ///   dangerous names would always be incomplete), and a query part without `=` entirely;
    /// - a `#fragment`, except a `redis-sentinel://` URL's (the master's name);
    /// - everything after the scheme when a `?` or `#` comes before the last `@` (the `@` may
    ///   then sit inside a query value);
    /// - the whole string when it does not start with `scheme://` (it may be a bare password, or
    ///   a mistyped scheme with a `://` further on).
    ///
    /// Idempotent: redacting a redacted URL changes nothing. Parameter names are kept, so
    /// `unix:///s.sock?password=x` becomes `unix:///s.sock?password=***`.
    public static func redacted(_ url: String) -> String {
        // Text before "://" counts as a scheme only when it is one (RFC 3986 §3.1): otherwise a
        // "://" later in the string would leave everything before it, credentials included, shown.
        guard let schemeEnd = url.range(of: "://"), isScheme(url[..<schemeEnd.lowerBound]) else {
            return url.isEmpty ? url : "***"
        }
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
            // A Sentinel URL's fragment is the master's name, which messages need; any other is hidden.
            fragment = scheme.hasSuffix("-sentinel://") ? String(rest[hash...]) : "#***"
            rest = rest[..<hash]
        }
        guard let questionMark = rest.firstIndex(of: "?") else { return scheme + credentials + rest + fragment }
        let query = rest[rest.index(after: questionMark)...].split(separator: "&", omittingEmptySubsequences: false).map
        { pair -> String in
            guard let equals = pair.firstIndex(of: "=") else { return pair.isEmpty ? "" : "***" }
            let name = pair[..<equals]
            let value = pair[pair.index(after: equals)...]
            if name == "db" && !value.isEmpty && value.allSatisfy({ $0.isASCII && $0.isNumber }) { return String(pair) }
            if RedisTLSOptions.parameterNames.contains(String(name)) { return String(pair) }
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

    /// Whether `text` is a URL scheme: a letter, then letters, digits, `+`, `-` or `.`.
    private static func isScheme(_ text: Substring) -> Bool {
        guard let first = text.first, first.isASCII, first.isLetter else { return false }
        return text.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber || "+-.".contains($0)) }
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
