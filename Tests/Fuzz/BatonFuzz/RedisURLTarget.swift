import BatonRedis

extension FuzzTarget {
    /// `RedisEndpoint(url:)` and `RedisEndpoint.redacted`: redaction is idempotent; a URL that
    /// parses to an endpoint with a password (other than `***`) counts as holding credentials; a
    /// refused URL's error never shows its user-info part; an accepted URL's
    /// ``RedisEndpoint/description`` reparses to the same servers, database, TLS choice and
    /// password presence (when its names hold no character that the description does not escape).
    static let redisURL = FuzzTarget(
        name: "redis-url", summary: "RedisEndpoint(url:) and RedisEndpoint.redacted (Redis URLs)"
    ) { bytes throws(PropertyViolation) in
        func violation(_ message: String) -> PropertyViolation {
            PropertyViolation(target: "redis-url", message: message)
        }
        let url = String(decoding: bytes, as: UTF8.self)
        let redacted = RedisEndpoint.redacted(url)
        guard RedisEndpoint.redacted(redacted) == redacted else {
            throw violation("redaction is not idempotent: \(redacted) redacts to \(RedisEndpoint.redacted(redacted))")
        }
        let endpoint: RedisEndpoint
        do {
            endpoint = try RedisEndpoint(url: url)
        } catch {
            // User info holding "://" or "*" can match the scheme or the "***" mask of the message.
            if let userInfo = userInfo(of: url), userInfo.count >= 6, !userInfo.contains("://"),
                !userInfo.contains("*"), "\(error)".contains(userInfo),
                !url.replacingOccurrences(of: userInfo + "@", with: "").contains(userInfo)
            {
                // The same URL with other user info: if its error shows the text too, the text comes
                // from the message itself ("redis://", "password"), not from the URL.
                let other = url.replacingOccurrences(
                    of: userInfo + "@", with: String(repeating: "Q", count: userInfo.count) + "@")
                if !errorText(other).contains(userInfo) {
                    throw violation("the error shows the URL's user-info part: \(error)")
                }
            }
            return
        }
        // A password of exactly "***" looks already redacted, so idempotence keeps it: not a leak.
        if let password = endpoint.password, password != "***", !RedisEndpoint.containsCredentials(url) {
            throw violation("the URL carries a password but containsCredentials says no")
        }
        guard descriptionRoundTrips(endpoint) else { return }
        let described = endpoint.description
        guard let again = try? RedisEndpoint(url: described) else {
            throw violation("the description \(described) does not parse")
        }
        guard again.topology == endpoint.topology, again.database == endpoint.database,
            (again.tls == nil) == (endpoint.tls == nil), (again.password == nil) == (endpoint.password == nil)
        else {
            throw violation("the description \(described) parses to a different endpoint: \(again)")
        }
    }

    /// The error parsing `url` throws, as text.
    private static func errorText(_ url: String) -> String {
        do {
            _ = try RedisEndpoint(url: url)
            return ""
        } catch {
            return "\(error)"
        }
    }

    /// What sits between `://` and the last `@`, as ``RedisEndpoint/redacted(_:)`` sees it.
    private static func userInfo(of url: String) -> String? {
        guard let schemeEnd = url.range(of: "://"), let at = url[schemeEnd.upperBound...].lastIndex(of: "@") else {
            return nil
        }
        return String(url[schemeEnd.upperBound..<at])
    }

    /// Whether the description can be expected to reparse: it writes names unescaped, so names
    /// holding URL syntax characters cannot come back.
    private static func descriptionRoundTrips(_ endpoint: RedisEndpoint) -> Bool {
        let syntax = Set("%@:/?#,[]")
        func plain(_ text: String?) -> Bool { !(text ?? "").contains(where: syntax.contains) }
        func plainTransport(_ transport: RedisEndpoint.Transport) -> Bool {
            switch transport {
            case .tcp(let host, _): return !host.contains(where: Set("%@/?#,[]").contains)
            case .unix(let path): return !path.contains(where: Set("%?#").contains)
            }
        }
        guard plain(endpoint.username) else { return false }
        switch endpoint.topology {
        case .standalone(let transport): return plainTransport(transport)
        case .sentinel(let sentinels, let masterName): return plain(masterName) && sentinels.allSatisfy(plainTransport)
        case .cluster(let seeds): return seeds.allSatisfy(plainTransport)
        }
    }
}
