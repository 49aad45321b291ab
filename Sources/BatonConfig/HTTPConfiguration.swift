#if canImport(Glibc)
    import Glibc
#endif

/// The `http` object: the listener `baton serve` runs for `/livez`, `/readyz`, `/metrics` and,
/// with at least one API key, the token API (`/v1/tokens/...`).
public struct HTTPConfiguration: Sendable, Equatable {
    /// Where to listen: a numeric address (no brackets) and a port.
    public struct Listen: Sendable, Equatable {
        /// `127.0.0.1`, `0.0.0.0` (every IPv4 interface), `::1`, `::` (every IPv6 interface).
        public var host: String
        /// 1...65535 (0 only from code, for an ephemeral port).
        public var port: Int

        /// Creates an address.
        public init(host: String, port: Int) {
            self.host = host
            self.port = port
        }

        /// `host:port`, with brackets around an IPv6 host.
        public var text: String { host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)" }

        /// The URL of `path` on this listener as seen from this machine: a wildcard host
        /// (`0.0.0.0`, `::`) becomes the loopback address of its family.
        public func localURL(path: String) -> String {
            let local = host == "0.0.0.0" ? "127.0.0.1" : host == "::" ? "::1" : host
            return "http://\(Listen(host: local, port: port).text)\(path)"
        }
    }

    /// The text default of `http.listen`.
    public static let defaultListenText = "127.0.0.1:9464"

    /// `http.listen`; `nil` when `"off"`. Default: `127.0.0.1:9464` (loopback only).
    public var listen: Listen? = Listen(host: "127.0.0.1", port: 9464)
    /// `http.max_connections`: connections open at once. Default: 64.
    public var maxConnections: Int = 64
    /// `http.max_connections_per_ip`: connections open at once from one client address (a proxy
    /// in front counts as one). Default: 16.
    public var maxConnectionsPerIP: Int = 16
    /// `http.max_body`: the largest request body in bytes. Default: 16384.
    public var maxBody: Int = 16 * 1024
    /// `http.api_keys`: the keys of the token API. Default: none, and then the token API is off
    /// (its routes are not registered).
    public var apiKeys: [APIKey] = []

    /// The defaults.
    public init() {}

    /// Parses an `http.listen` value: `host:port` with a numeric IPv4 host, `[v6]:port`, `:port`
    /// (every IPv4 interface, `0.0.0.0`), or `off`.
    /// - Returns: the address (`nil` for `off`), or a message saying what is wrong.
    public static func parseListen(_ text: String) -> Result<Listen?, ListenProblem> {
        if text == "off" { return .success(nil) }
        let host: String
        let portText: Substring
        if text.hasPrefix("[") {
            guard let close = text.firstIndex(of: "]"), text[text.index(after: close)...].hasPrefix(":") else {
                return .failure(ListenProblem(text: text))
            }
            host = String(text[text.index(after: text.startIndex)..<close])
            portText = text[text.index(close, offsetBy: 2)...]
            var address = in6_addr()
            guard inet_pton(AF_INET6, host, &address) == 1 else { return .failure(ListenProblem(text: text)) }
        } else {
            guard let colon = text.lastIndex(of: ":") else { return .failure(ListenProblem(text: text)) }
            let written = String(text[..<colon])
            host = written.isEmpty ? "0.0.0.0" : written
            portText = text[text.index(after: colon)...]
            var address = in_addr()
            guard inet_pton(AF_INET, host, &address) == 1 else { return .failure(ListenProblem(text: text)) }
        }
        guard let port = Int(portText), (1...65535).contains(port) else { return .failure(ListenProblem(text: text)) }
        return .success(Listen(host: host, port: port))
    }

    /// Why an `http.listen` value was refused.
    public struct ListenProblem: Error, Sendable, CustomStringConvertible {
        /// The value as written.
        public let text: String

        public var description: String {
            "'\(text.prefix(80))' is not an address to listen on: write \"127.0.0.1:9464\", \"[::1]:9464\", \":9464\" (every IPv4 interface) or \"off\"; the host must be a numeric IP address and the port 1-65535"
        }
    }
}
