/// Facts about host names that several layers check (insecure HTTP, insecure TLS).
public enum HostNames {
    /// Whether `host` is this machine: `localhost`, `::1` (bracketed or not) or `127.0.0.0/8`.
    public static func isLoopback(_ host: String) -> Bool {
        var bare = Substring(host.lowercased())
        if bare.hasPrefix("[") && bare.hasSuffix("]") { bare = bare.dropFirst().dropLast() }
        return bare == "localhost" || bare == "::1" || bare.hasPrefix("127.")
    }
}
