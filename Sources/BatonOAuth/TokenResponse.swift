import BatonConfig
import Foundation

/// A successful token response (RFC 6749 §5.1), normalised.
public struct TokenResponse: Sendable, Equatable {
    /// The access token.
    public let accessToken: String
    /// `Bearer` for any capitalisation of "bearer"; other types as sent; `Bearer` when absent.
    public let tokenType: String
    /// Absolute expiry, ms since the epoch, computed from the `now` the caller passed.
    public let expiresAt: Int64
    /// Where the expiry came from: `expires_in`, the JWT's `exp`, or the configured default.
    public let expirySource: ExpirySource
    /// The granted scope, if sent.
    public let scope: String?
    /// The refresh token in the response, if any: a new one means the provider rotated it
    /// (persist it before anything else); `nil` means keep the old one.
    public let refreshToken: String?

    /// The longest lifetime Baton believes (10 years), whatever the source: an `expires_in` or a
    /// JWT `exp` further away than this is treated as invalid (see ``TokenResponseParser``), and
    /// a configured default lifetime is capped at it. Keeps every expiry a small, exact `Int64`.
    public static let maximumLifetime: Duration = .seconds(10 * 366 * 86_400)

    /// How the expiry was determined.
    public enum ExpirySource: String, Sendable {
        case expiresIn = "expires_in"
        case jwtExp = "jwt_exp"
        case defaultLifetime = "default_lifetime"
    }
}

/// Turns a token endpoint's answer into a ``TokenResponse`` or a classified ``TokenEndpointError``.
///
/// Rules for a 2xx answer, which holds freshly issued tokens (and the provider may already have
/// invalidated the refresh token Baton sent):
/// - Its body is never quoted: errors describe its shape (`JSON object {access_token: number,
///   refresh_token: string}`, `not JSON or form-encoded: 512 bytes, content-type text/html`).
/// - Every number is checked before it becomes an `Int64`. An `expires_in` that is not a finite
///   number in (0, ``TokenResponse/maximumLifetime``] (`1e400`, `"inf"`, `-5`, `9.3e15`) is
///   ignored, exactly as if it were absent: the expiry then comes from the JWT's `exp` (same
///   bounds), else the configured default lifetime. The tokens are kept rather than refused
///   because the provider has issued them (and rotated the refresh token); a lifetime guessed
///   too long is corrected by the first 401 and a forced refresh.
/// - When the answer is not a usable token response (no `access_token`, or not a string) but
///   carries a non-empty string `refresh_token` (JSON or form-encoded), that token is returned in
///   ``TokenEndpointError/protocolError(status:description:recoveredRefreshToken:)`` so the
///   refresh protocol can persist it: it may be the only copy of a rotated refresh token.
package enum TokenResponseParser {
    /// - Parameters:
    ///   - secrets: values Baton sent (refresh token, client secret) that must never be quoted.
    package static func parse(
        status: Int, headers: [String: String], body: [UInt8], now: Int64, defaultLifetime: Duration,
        secrets: [String]
    ) -> Result<TokenResponse, TokenEndpointError> {
        let contentType = headers["content-type"] ?? ""
        let fields = decodeFields(body, contentType: contentType)

        guard (200...299).contains(status) else {
            let code = fields?["error"].flatMap(stringValue) ?? ""
            // A confused provider may put tokens in an error body: they are blanked like the
            // secrets Baton sent, and a structured body is described by its keys, never quoted.
            let hidden = secrets + issuedTokens(fields)
            let stated = fields?["error_description"].flatMap(stringValue).map { redact($0, hidden) }
            let body =
                fields == nil
                ? quoted(body, secrets: hidden) : shape(body, contentType: contentType, secrets: hidden)
            // Empty when the provider sent a code alone: messages then show the code once.
            let description = stated ?? (code.isEmpty ? body : "")
            let retryAfter = headers["retry-after"].flatMap { parseRetryAfter($0, now: now) }
            // The code as shown: matched below as sent, but an unknown one may carry anything.
            let shownCode = redact(code, hidden)
            switch (status, code) {
            case (_, "invalid_grant"):
                return .failure(.invalidGrant(description: description))
            case (_, "invalid_client"), (_, "unauthorized_client"), (_, "unsupported_grant_type"), (_, "invalid_scope"),
                (_, "invalid_request"):
                return .failure(.rejectedConfiguration(code: code, description: description, status: status))
            case (429, _), (503, _):
                return .failure(
                    .rateLimited(
                        status: status, retryAfter: retryAfter,
                        description: description.isEmpty ? shownCode : description))
            case (500...599, _):
                return .failure(
                    .serverError(status: status, description: description.isEmpty ? shownCode : description))
            case (401, _), (403, _):
                return .failure(
                    .rejectedConfiguration(
                        code: code.isEmpty ? "invalid_client" : shownCode, description: description, status: status))
            default:
                let detail: String
                switch (code.isEmpty, stated) {
                case (true, nil): detail = "unexpected status; body: \(body)"
                case (true, let stated?): detail = "unexpected status: \(stated)"
                case (false, _): detail = TokenEndpointError.stated(shownCode, description)
                }
                return .failure(.protocolError(status: status, description: detail))
            }
        }

        // From here on the body holds tokens: describe it, never quote it. The description shows
        // ordinary field names, and a name may be a secret Baton sent (`...&<client secret>`).
        let described = { shape(body, contentType: contentType, secrets: secrets) }
        guard let fields else {
            return .failure(
                .protocolError(
                    status: status,
                    description: "the body is not a token response: \(described())"))
        }
        let refreshTokenField = fields["refresh_token"]
        let refreshToken: String?
        switch refreshTokenField {
        case nil, .null?: refreshToken = nil
        case .string(let text)?: refreshToken = text.isEmpty ? nil : text
        case let other?:
            return .failure(
                .protocolError(
                    status: status,
                    description:
                        "refresh_token is \(other.typeName), not a string: \(described())"))
        }
        func invalid(_ problem: String) -> Result<TokenResponse, TokenEndpointError> {
            // Saying that a refresh token came back is not a secret; whether it gets persisted is
            // the caller's business (TokenEndpointError.recoveredRefreshToken).
            let recovery = refreshToken == nil ? "" : "; it carries a refresh_token, handed back for persisting"
            return .failure(
                .protocolError(
                    status: status, description: "\(problem)\(recovery): \(described())",
                    recoveredRefreshToken: refreshToken))
        }
        let accessToken: String
        switch fields["access_token"] {
        case nil: return invalid("no access_token")
        case .string(let text)?:
            guard !text.isEmpty else { return invalid("access_token is empty") }
            accessToken = text
        case let other?: return invalid("access_token is \(other.typeName), not a string")
        }
        let rawType = fields["token_type"].flatMap(stringValue) ?? "Bearer"
        let tokenType = rawType.lowercased() == "bearer" ? "Bearer" : rawType

        let expiresAt: Int64
        let source: TokenResponse.ExpirySource
        if let seconds = fields["expires_in"].flatMap(numberValue), let lifetime = lifetimeMilliseconds(seconds),
            let expiry = adding(now, lifetime)
        {
            expiresAt = expiry
            source = .expiresIn
        } else if let exp = jwtExpiry(accessToken, now: now) {
            expiresAt = exp
            source = .jwtExp
        } else {
            let lifetime = min(defaultLifetime, TokenResponse.maximumLifetime)
            expiresAt =
                adding(
                    now, lifetime.components.seconds * 1000 + lifetime.components.attoseconds / 1_000_000_000_000_000)
                ?? now
            source = .defaultLifetime
        }
        return .success(
            TokenResponse(
                accessToken: accessToken, tokenType: tokenType, expiresAt: expiresAt, expirySource: source,
                scope: fields["scope"].flatMap(stringValue), refreshToken: refreshToken))
    }

    /// JSON object members, or form-encoded fields as strings (GitHub answers
    /// `access_token=...&token_type=bearer`); `nil` for anything else. JSON numbers stay text
    /// (`1e400` parses; it is checked where it is used).
    package static func decodeFields(_ body: [UInt8], contentType: String) -> [String: JSONValue]? {
        if let document = try? JSONReader.parse(body) {
            guard case .object(let members) = document else { return nil }
            return Dictionary(members.map { ($0.key, $0.value) }, uniquingKeysWith: { _, last in last })
        }
        guard let pairs = formFields(body, contentType: contentType) else { return nil }
        return Dictionary(pairs.map { ($0.0, JSONValue.string($0.1)) }, uniquingKeysWith: { _, last in last })
    }

    /// Form-encoded name/value pairs, when the body looks form-encoded.
    private static func formFields(_ body: [UInt8], contentType: String) -> [(String, String)]? {
        let text = String(decoding: body, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
        guard
            contentType.contains("x-www-form-urlencoded")
                || (text.contains("=") && !text.contains("<") && !text.contains(" "))
        else {
            return nil
        }
        var pairs: [(String, String)] = []
        for pair in text.split(separator: "&") {
            let parts = pair.split(separator: "=", maxSplits: 1)
            guard let name = parts.first?.replacingOccurrences(of: "+", with: " ").removingPercentEncoding else {
                return nil
            }
            let value = parts.count > 1 ? parts[1].replacingOccurrences(of: "+", with: " ").removingPercentEncoding : ""
            pairs.append((name, value ?? ""))
        }
        return pairs.isEmpty ? nil : pairs
    }

    /// What a body looks like, without a single value from it: JSON keys and value types, form
    /// field names, or its size and content type, with `secrets` (values Baton sent, tokens the
    /// body holds) redacted, because a field name may be one (`...&<client secret>`). Safe to put
    /// in records and logs.
    package static func shape(_ body: [UInt8], contentType: String, secrets: [String]) -> String {
        redact(unredactedShape(body, contentType: contentType), secrets)
    }

    private static func unredactedShape(_ body: [UInt8], contentType: String) -> String {
        func keyList(_ entries: [(String, String)]) -> String {
            let shown = entries.prefix(20).map { "\(displayKey($0.0)): \($0.1)" }.joined(separator: ", ")
            return "{" + shown + (entries.count > 20 ? ", … \(entries.count - 20) more" : "") + "}"
        }
        let type = contentType.isEmpty ? "no content-type" : "content-type \(printable(contentType, limit: 80))"
        do {
            switch try JSONReader.parse(body) {
            case .object(let members):
                return "JSON object \(keyList(members.map { ($0.key, jsonTypeName($0.value)) }))"
            case let other:
                return "JSON \(jsonTypeName(other)), not an object (\(body.count) bytes)"
            }
        } catch let error as JSONReader.SyntaxError {
            if let pairs = formFields(body, contentType: contentType) {
                return "form-encoded \(keyList(pairs.map { ($0.0, $0.1.isEmpty ? "empty" : "string") }))"
            }
            if body.isEmpty { return "an empty body, \(type)" }
            // The position only: the syntax error's message may quote a character of the body.
            return
                "not JSON (syntax error at line \(error.line), column \(error.column)) or form-encoded: \(body.count) bytes, \(type)"
        } catch {
            return "\(body.count) bytes, \(type)"
        }
    }

    /// A JSON value's type as JSON names it.
    static func jsonTypeName(_ value: JSONValue) -> String {
        switch value {
        case .object: return "object"
        case .array: return "array"
        case .string: return "string"
        case .number: return "number"
        case .bool: return "boolean"
        case .null: return "null"
        }
    }

    /// A key as it may be shown: ordinary names verbatim, anything that could be a value
    /// (long, or with unusual characters) by its length only.
    private static func displayKey(_ key: String) -> String {
        let ordinary =
            !key.isEmpty && key.count <= 40
            && key.unicodeScalars.allSatisfy {
                $0.isASCII
                    && ($0.properties.isAlphabetic || ("0"..."9").contains($0) || "_-.:".unicodeScalars.contains($0))
            }
        return ordinary ? key : "<key of \(key.count) characters>"
    }

    private static func printable(_ text: String, limit: Int) -> String {
        String(text.prefix(limit).map { $0.isASCII && $0.asciiValue! >= 0x20 && $0.asciiValue! < 0x7f ? $0 : "?" })
    }

    /// A string, for fields like `scope` and `token_type`; other JSON types are not strings.
    static func stringValue(_ value: JSONValue) -> String? {
        if case .string(let text) = value { return text }
        return nil
    }

    /// A JSON number, or a string holding one in JSON's number syntax (`"3600"`), as a `Double`,
    /// which may be infinite (`1e400`): callers check the range. `"inf"`, `"nan"` and hex are not numbers.
    static func numberValue(_ value: JSONValue) -> Double? {
        let text: String
        switch value {
        case .number(let number): text = number
        case .string(let string): text = string.trimmingCharacters(in: .whitespaces)
        default: return nil
        }
        guard !text.isEmpty,
            text.unicodeScalars.allSatisfy({ ("0"..."9").contains($0) || "+-.eE".unicodeScalars.contains($0) })
        else { return nil }
        return Double(text)
    }

    /// A lifetime in seconds as whole milliseconds, when it is finite, positive and at most
    /// ``TokenResponse/maximumLifetime``; `nil` otherwise. Never traps.
    static func lifetimeMilliseconds(_ seconds: Double) -> Int64? {
        guard seconds.isFinite, seconds > 0, seconds <= Double(TokenResponse.maximumLifetime.components.seconds) else {
            return nil
        }
        return Int64((seconds * 1000).rounded(.down))
    }

    /// `base + milliseconds`, or `nil` on overflow.
    private static func adding(_ base: Int64, _ milliseconds: Int64) -> Int64? {
        let (sum, overflow) = base.addingReportingOverflow(milliseconds)
        return overflow ? nil : sum
    }

    /// The `exp` claim (seconds) of a JWT access token, as ms; `nil` for opaque tokens, and for an
    /// `exp` that is not a finite positive number at most ``TokenResponse/maximumLifetime`` after `now`.
    static func jwtExpiry(_ token: String, now: Int64) -> Int64? {
        let parts = token.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 3 else { return nil }
        var base64 = parts[1].replacingOccurrences(of: "-", with: "+").replacingOccurrences(of: "_", with: "/")
        base64 += String(repeating: "=", count: (4 - base64.count % 4) % 4)
        guard let data = Data(base64Encoded: base64), case .object(let claims)? = try? JSONReader.parse(Array(data)),
            let exp = claims.last(where: { $0.key == "exp" }).flatMap({ numberValue($0.value) })
        else { return nil }
        let latest = Double(now) + Double(TokenResponse.maximumLifetime.components.seconds) * 1000
        guard exp.isFinite, exp > 0, exp * 1000 <= latest else { return nil }
        return Int64((exp * 1000).rounded(.down))
    }

    /// `Retry-After`: delta-seconds or an HTTP-date (RFC 9110 §10.2.3); `nil` when unusable.
    static func parseRetryAfter(_ value: String, now: Int64) -> Duration? {
        let text = value.trimmingCharacters(in: .whitespaces)
        if let seconds = Int64(text), seconds >= 0 { return .seconds(seconds) }
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.timeZone = TimeZone(identifier: "GMT")
        for format in ["EEE, dd MMM yyyy HH:mm:ss zzz", "EEEE, dd-MMM-yy HH:mm:ss zzz", "EEE MMM d HH:mm:ss yyyy"] {
            formatter.dateFormat = format
            if let date = formatter.date(from: text) {
                // Checked: a date in the year 300000 must not trap the conversion.
                let wait = date.timeIntervalSince1970 * 1000 - Double(now)
                guard wait.isFinite, wait < 1e15 else { return nil }
                return .milliseconds(wait > 0 ? Int64(wait) : 0)
            }
        }
        return nil
    }

    /// The first 200 characters of a non-2xx body, printable, with anything Baton sent blanked out.
    /// Never used for a 2xx body, which holds freshly issued tokens (see ``shape(_:contentType:secrets:)``).
    static func quoted(_ body: [UInt8], secrets: [String]) -> String {
        // Redacted before it is cut: a secret straddling the cut would otherwise show its start.
        let text = redact(String(decoding: body, as: UTF8.self), secrets)
        let shown = text.prefix(200).map { $0.isASCII && ($0.asciiValue! < 0x20) ? " " : String($0) }.joined()
        return "\"" + shown + (text.count > 200 ? "…\" (\(body.count) bytes)" : "\"")
    }

    /// `text` with every one of `secrets` and every token-like word (see ``isTokenLike(_:)``)
    /// replaced by `<redacted>`.
    static func redact(_ text: String, _ secrets: [String]) -> String {
        let known = secrets.filter { $0.count >= 4 }.reduce(text) {
            $0.replacingOccurrences(of: $1, with: "<redacted>")
        }
        var result = ""
        var word = ""
        func flush() {
            result += isTokenLike(word) ? "<redacted>" : word
            word = ""
        }
        for character in known {
            if character.isASCII && (character.isLetter || character.isNumber || "._~+/=-".contains(character)) {
                word.append(character)
            } else {
                flush()
                result.append(character)
            }
        }
        flush()
        return result
    }

    /// Whether a word of an error body could be a token Baton did not send (one the provider
    /// issued): 24 characters or more of the token alphabet mixing letters and digits. Words
    /// and host names rarely look like that; tokens nearly always do.
    static func isTokenLike(_ word: String) -> Bool {
        word.count >= 24 && word.contains(where: \.isNumber) && word.contains(where: \.isLetter)
    }

    /// The string values of the token fields of a decoded body (`refresh_token`, `access_token`,
    /// `id_token`): never shown, whatever the status.
    static func issuedTokens(_ fields: [String: JSONValue]?) -> [String] {
        ["refresh_token", "access_token", "id_token"].compactMap { fields?[$0].flatMap(stringValue) }
    }
}
