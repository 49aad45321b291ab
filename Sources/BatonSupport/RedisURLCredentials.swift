/// Where a Redis URL keeps its credentials, found the way `RedisEndpoint(url:)` parses them, for
/// code that must not parse the whole URL (the configuration validator) and for putting a
/// password kept outside the URL (`BATON_REDIS_PASSWORD`, `redis_password_file`) into one.
///
/// The user-info part is `user:password` or, with no colon, a password alone
/// (`redis://PASSWORD@host`, as redis-py and Jedis spell it); so a URL that names an ACL user and
/// takes its password from elsewhere is written `redis://USER:@host`. A `password=` query
/// parameter is a password too.
public enum RedisURLCredentials {
    /// The user-info of `url`, without its `@`: what lies between `scheme://` and the last `@`
    /// before the host list ends (for `unix://`, before the socket path). `nil` when there is no
    /// `@` there, or no `scheme://`.
    public static func userInfoRange(in url: String) -> Range<String.Index>? {
        guard let schemeEnd = url.range(of: "://") else { return nil }
        let rest = url[schemeEnd.upperBound...]
        let isUnix = url[..<schemeEnd.lowerBound] == "unix"
        let authorityEnd =
            (isUnix ? rest.firstIndex(of: "/") : rest.firstIndex(where: { $0 == "/" || $0 == "?" || $0 == "#" }))
            ?? rest.endIndex
        guard let at = rest[..<authorityEnd].lastIndex(of: "@") else { return nil }
        return rest.startIndex..<at
    }

    /// Whether `url` carries a password: a non-empty one in its user-info, or a `password`
    /// query parameter. (`redis://USER:@host` carries none.)
    public static func hasPassword(_ url: String) -> Bool {
        if let range = userInfoRange(in: url) {
            let userInfo = url[range]
            let password = userInfo.firstIndex(of: ":").map { userInfo[userInfo.index(after: $0)...] } ?? userInfo
            if !password.isEmpty { return true }
        }
        return hasPasswordParameter(url)
    }

    /// `url` with `password` (percent-encoded) as the password of its user-info, keeping the user
    /// name: `redis://USER:@host` becomes `redis://USER:ENCODED@host`, `redis://host` becomes
    /// `redis://:ENCODED@host`. `nil` when `url` already carries a password (``hasPassword(_:)``)
    /// or has no `scheme://`: two passwords are ambiguous, and the caller says so.
    public static func inserting(password: String, into url: String) -> String? {
        guard !hasPassword(url), let schemeEnd = url.range(of: "://") else { return nil }
        let encoded = percentEncoded(password)
        guard let range = userInfoRange(in: url) else {
            return url[..<schemeEnd.upperBound] + ":" + encoded + "@" + url[schemeEnd.upperBound...]
        }
        // No password here, so the user-info is `USER:` or empty.
        let userInfo = url[range]
        let user = userInfo.firstIndex(of: ":").map { userInfo[..<$0] } ?? ""
        return url.replacingCharacters(in: range, with: user + ":" + encoded)
    }

    private static func hasPasswordParameter(_ url: String) -> Bool {
        guard let schemeEnd = url.range(of: "://") else { return false }
        var rest = url[(userInfoRange(in: url)?.upperBound ?? schemeEnd.upperBound)...]
        if let hash = rest.firstIndex(of: "#") { rest = rest[..<hash] }
        guard let questionMark = rest.firstIndex(of: "?") else { return false }
        return rest[rest.index(after: questionMark)...].split(separator: "&").contains {
            $0.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false).first == "password"
        }
    }

    /// Every byte but the unreserved ones (RFC 3986: letters, digits, `-._~`) as `%XX`.
    private static func percentEncoded(_ text: String) -> String {
        var encoded = ""
        for byte in text.utf8 {
            let scalar = Unicode.Scalar(byte)
            if scalar.isASCII
                && (scalar.properties.isAlphabetic || ("0"..."9").contains(scalar)
                    || "-._~".unicodeScalars.contains(scalar))
            {
                encoded.unicodeScalars.append(scalar)
            } else {
                encoded += "%" + (byte < 16 ? "0" : "") + String(byte, radix: 16, uppercase: true)
            }
        }
        return encoded
    }
}
