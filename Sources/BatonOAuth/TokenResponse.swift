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

    /// How the expiry was determined.
    public enum ExpirySource: String, Sendable {
        case expiresIn = "expires_in"
        case jwtExp = "jwt_exp"
        case defaultLifetime = "default_lifetime"
    }
}

/// Turns a token endpoint's answer into a ``TokenResponse`` or a classified ``TokenEndpointError``.
enum TokenResponseParser {
    /// - Parameters:
    ///   - secrets: values Baton sent (refresh token, client secret) that must never be quoted.
    static func parse(status: Int, headers: [String: String], body: [UInt8], now: Int64, defaultLifetime: Duration,
                      secrets: [String]) -> Result<TokenResponse, TokenEndpointError> {
        let fields = decodeFields(body, contentType: headers["content-type"] ?? "")
        let quote = { quoted(body, secrets: secrets) }

        guard (200...299).contains(status) else {
            let code = fields?["error"].flatMap(stringValue) ?? ""
            let description = fields?["error_description"].flatMap(stringValue) ?? (code.isEmpty ? quote() : code)
            let retryAfter = headers["retry-after"].flatMap { parseRetryAfter($0, now: now) }
            switch (status, code) {
            case (_, "invalid_grant"):
                return .failure(.invalidGrant(description: redact(description, secrets)))
            case (_, "invalid_client"), (_, "unauthorized_client"), (_, "unsupported_grant_type"), (_, "invalid_scope"), (_, "invalid_request"):
                return .failure(.rejectedConfiguration(code: code, description: redact(description, secrets), status: status))
            case (429, _), (503, _):
                return .failure(.rateLimited(status: status, retryAfter: retryAfter, description: redact(description, secrets)))
            case (500...599, _):
                return .failure(.serverError(status: status, description: redact(description, secrets)))
            case (401, _), (403, _):
                return .failure(.rejectedConfiguration(code: code.isEmpty ? "invalid_client" : code, description: redact(description, secrets), status: status))
            default:
                return .failure(.protocolError(status: status, description: code.isEmpty ? "unexpected status; body starts: \(quote())" : "\(code): \(redact(description, secrets))"))
            }
        }
        guard let fields else {
            return .failure(.protocolError(status: status, description: "the body is neither JSON nor form-encoded; it starts: \(quote())"))
        }
        guard let accessToken = fields["access_token"].flatMap(stringValue), !accessToken.isEmpty else {
            return .failure(.protocolError(status: status, description: "no access_token in the response (fields: \(fields.keys.sorted().joined(separator: ", ")))"))
        }
        let rawType = fields["token_type"].flatMap(stringValue) ?? "Bearer"
        let tokenType = rawType.lowercased() == "bearer" ? "Bearer" : rawType

        let expiresAt: Int64
        let source: TokenResponse.ExpirySource
        if let expiresIn = fields["expires_in"].flatMap(numberValue), expiresIn > 0 {
            expiresAt = now + Int64(expiresIn * 1000)
            source = .expiresIn
        } else if let exp = jwtExpiry(accessToken) {
            expiresAt = exp
            source = .jwtExp
        } else {
            expiresAt = now + Int64(defaultLifetime.components.seconds * 1000)
            source = .defaultLifetime
        }
        let refreshToken = fields["refresh_token"].flatMap(stringValue).flatMap { $0.isEmpty ? nil : $0 }
        return .success(TokenResponse(accessToken: accessToken, tokenType: tokenType, expiresAt: expiresAt, expirySource: source,
                                      scope: fields["scope"].flatMap(stringValue), refreshToken: refreshToken))
    }

    /// JSON object fields, or form-encoded fields (GitHub answers `access_token=...&token_type=bearer`).
    static func decodeFields(_ body: [UInt8], contentType: String) -> [String: Any]? {
        if let object = try? JSONSerialization.jsonObject(with: Data(body)) as? [String: Any] { return object }
        let text = String(decoding: body, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
        guard contentType.contains("x-www-form-urlencoded") || (text.contains("=") && !text.contains("<") && !text.contains(" ")) else {
            return nil
        }
        var fields: [String: Any] = [:]
        for pair in text.split(separator: "&") {
            let parts = pair.split(separator: "=", maxSplits: 1)
            guard let name = parts.first?.replacingOccurrences(of: "+", with: " ").removingPercentEncoding else { return nil }
            let value = parts.count > 1 ? parts[1].replacingOccurrences(of: "+", with: " ").removingPercentEncoding : ""
            fields[name] = value ?? ""
        }
        return fields.isEmpty ? nil : fields
    }

    static func stringValue(_ value: Any) -> String? {
        if let text = value as? String { return text }
        if let number = value as? NSNumber, !(value is Bool) { return number.stringValue }
        return nil
    }

    /// `expires_in` as a number or a numeric string.
    static func numberValue(_ value: Any) -> Double? {
        if value is Bool { return nil }
        if let number = value as? NSNumber { return number.doubleValue }
        if let text = value as? String { return Double(text.trimmingCharacters(in: .whitespaces)) }
        return nil
    }

    /// The `exp` claim (seconds) of a JWT access token, as ms; `nil` for opaque tokens.
    static func jwtExpiry(_ token: String) -> Int64? {
        let parts = token.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 3 else { return nil }
        var base64 = parts[1].replacingOccurrences(of: "-", with: "+").replacingOccurrences(of: "_", with: "/")
        base64 += String(repeating: "=", count: (4 - base64.count % 4) % 4)
        guard let data = Data(base64Encoded: base64),
              let claims = try? JSONSerialization.jsonObject(with: data) as? [String: Any],
              let exp = claims["exp"].flatMap(numberValue) else { return nil }
        return Int64(exp * 1000)
    }

    /// `Retry-After`: delta-seconds or an HTTP-date (RFC 9110 §10.2.3).
    static func parseRetryAfter(_ value: String, now: Int64) -> Duration? {
        let text = value.trimmingCharacters(in: .whitespaces)
        if let seconds = Int64(text), seconds >= 0 { return .seconds(seconds) }
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.timeZone = TimeZone(identifier: "GMT")
        for format in ["EEE, dd MMM yyyy HH:mm:ss zzz", "EEEE, dd-MMM-yy HH:mm:ss zzz", "EEE MMM d HH:mm:ss yyyy"] {
            formatter.dateFormat = format
            if let date = formatter.date(from: text) {
                return .milliseconds(max(0, Int64(date.timeIntervalSince1970 * 1000) - now))
            }
        }
        return nil
    }

    /// The first 200 bytes of a body, printable, with anything Baton sent blanked out.
    static func quoted(_ body: [UInt8], secrets: [String]) -> String {
        let text = String(decoding: body.prefix(200), as: UTF8.self)
            .map { $0.isASCII && ($0.asciiValue! < 0x20) ? " " : String($0) }.joined()
        return "\"" + redact(text, secrets) + (body.count > 200 ? "…\" (\(body.count) bytes)" : "\"")
    }

    static func redact(_ text: String, _ secrets: [String]) -> String {
        secrets.filter { $0.count >= 4 }.reduce(text) { $0.replacingOccurrences(of: $1, with: "<redacted>") }
    }
}
