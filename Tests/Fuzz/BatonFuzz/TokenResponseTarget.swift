import BatonConfig
import BatonOAuth
import Foundation

extension FuzzTarget {
    /// `TokenResponseParser.parse`, the one function that turns a token endpoint's status,
    /// headers and body into a token or an error. The input is a tiny HTTP answer (see
    /// ``FuzzedHTTPAnswer``). Properties: an error never shows a piece (8 characters or more) of
    /// a secret Baton sent when the body holds that secret; for a 2xx status it never quotes a
    /// value of the body; a token has a non-empty access token, a normalised `Bearer` and an
    /// expiry at most ``TokenResponse/maximumLifetime`` away.
    static let tokenResponse = FuzzTarget(
        name: "token-response", summary: "TokenResponseParser.parse (status, headers, JSON or form body)"
    ) { bytes throws(PropertyViolation) in
        func violation(_ message: String) -> PropertyViolation {
            PropertyViolation(target: "token-response", message: message)
        }
        let answer = FuzzedHTTPAnswer(bytes)
        let now: Int64 = 1_764_000_000_000
        let secrets = ["Fz-refresh-secret-5521", "Fz-client-secret-8832"]
        let result = TokenResponseParser.parse(
            status: answer.status, headers: answer.headers, body: answer.body, now: now,
            defaultLifetime: .seconds(3600), secrets: secrets)
        switch result {
        case .success(let token):
            let latest = now + TokenResponse.maximumLifetime.components.seconds * 1000
            guard !token.accessToken.isEmpty else { throw violation("a token with an empty access token") }
            guard token.tokenType.lowercased() != "bearer" || token.tokenType == "Bearer" else {
                throw violation("token type \(token.tokenType) is not normalised to Bearer")
            }
            guard token.expiresAt <= latest else {
                throw violation("expiry \(token.expiresAt) is more than the maximum lifetime after \(now)")
            }
        case .failure(let error):
            let message = "\(error)"
            for secret in secrets where answer.body.contains(secret) {
                let stripped = String(decoding: answer.body, as: UTF8.self).replacingOccurrences(of: secret, with: "")
                let head = answer.headers.map { "\($0.key): \($0.value)" }.joined(separator: "\n")
                for piece in pieces(of: secret, length: 8)
                where message.contains(piece) && !stripped.contains(piece) && !head.contains(piece) {
                    throw violation("the error shows '\(piece)' of a secret Baton sent: \(message)")
                }
            }
            let contentType = answer.headers["content-type"] ?? ""
            if (200...299).contains(answer.status),
                let fields = TokenResponseParser.decodeFields(answer.body, contentType: contentType)
            {
                // The body's shape lists its field names, never a value; a value that is text of
                // the shape (` h-secret-5519` next to a field named `h-secret-5519`, shown after
                // ", ") is not quoted from the body. Everything else of the message must not hold one.
                let shape = TokenResponseParser.shape(answer.body, contentType: contentType, secrets: secrets)
                let rest = message.replacingOccurrences(of: shape, with: "\n")
                let keys = fields.keys.joined(separator: "\n") + "\n" + contentType
                for case .string(let value) in fields.values
                where value.count >= 12 && value.contains(where: \.isNumber) && !keys.contains(value)
                    && (rest.contains(value) || (message.contains(value) && !shape.contains(value)))
                {
                    throw violation("the error of a 2xx answer quotes a value of its body: \(message)")
                }
            }
        }
    }

    /// Every run of `length` characters of `text`.
    private static func pieces(of text: String, length: Int) -> [String] {
        let characters = Array(text)
        guard characters.count >= length else { return [text] }
        return (0...(characters.count - length)).map { String(characters[$0..<$0 + length]) }
    }
}

/// A token endpoint's answer from fuzz bytes: `STATUS\nname: value\n...\n\nBODY`. The first
/// line is the status (200 when it is not a number); header names are lower-cased, as libcurl's
/// reader gives them. Input without a blank line is a body answered with 200 and no headers.
struct FuzzedHTTPAnswer {
    var status = 200
    var headers: [String: String] = [:]
    var body: [UInt8]

    init(_ bytes: [UInt8]) {
        let separator: [UInt8] = [0x0A, 0x0A]
        guard let split = (0..<max(0, bytes.count - 1)).first(where: { bytes[$0..<$0 + 2].elementsEqual(separator) })
        else {
            body = bytes
            return
        }
        body = Array(bytes[(split + 2)...])
        let lines = String(decoding: bytes[..<split], as: UTF8.self).split(
            separator: "\n", omittingEmptySubsequences: false)
        status = Int(lines[0].trimmingCharacters(in: .whitespaces)) ?? 200
        for line in lines.dropFirst() {
            guard let colon = line.firstIndex(of: ":") else { continue }
            headers[line[..<colon].lowercased()] = line[line.index(after: colon)...]
                .trimmingCharacters(in: .whitespaces)
        }
    }
}
