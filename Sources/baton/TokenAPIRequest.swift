import BatonHTTP
import BatonSupport
import Foundation

/// What a token API request asks for, read from its path, query and body; or the 4xx answer
/// that says why it cannot be served. No Redis, no keys: the parsing half of ``TokenAPI``.
enum TokenAPIRequest: Equatable {
    /// `GET /v1/tokens/{service}`: a valid token.
    case token(service: String, wait: Duration)
    /// `POST /v1/tokens/{service}/refresh` `{"version": N}`: a token newer than `version`.
    case refresh(service: String, newerThan: Int64, wait: Duration)

    /// The route prefix.
    static let prefix = "/v1/tokens/"
    /// How long a request waits when it says nothing (`?wait=`): as long as `baton get` does.
    static let defaultWait: Duration = .seconds(10)
    /// The longest wait a request may ask for; longer ones are cut to this.
    static let maxWait: Duration = .seconds(30)
    /// The largest refresh body accepted, in bytes (`{"version": N}` needs a few dozen).
    static let maxBodyBytes = 1024

    /// A request that cannot be served, with its status (400, 404, 405, 413) and message.
    struct Refusal: Error, Equatable {
        let status: Int
        let error: String
        let message: String
        var allow: String?
    }

    /// The service named by `path` and whether it is the `/refresh` route, or `nil` for a path
    /// that is neither (404).
    static func route(_ path: String) -> (service: String, refresh: Bool)? {
        guard path.hasPrefix(prefix) else { return nil }
        let parts = path.dropFirst(prefix.count).split(separator: "/", omittingEmptySubsequences: false)
        switch parts.count {
        case 1 where !parts[0].isEmpty: return (String(parts[0]), false)
        case 2 where !parts[0].isEmpty && parts[1] == "refresh": return (String(parts[0]), true)
        default: return nil
        }
    }

    /// Reads `request` (its route already matched by ``route(_:)``).
    /// - Throws: ``Refusal``.
    init(_ request: HTTPRequest, service: String, refresh: Bool) throws(Refusal) {
        let allowed: HTTPMethod = refresh ? .post : .get
        guard request.method == allowed || (!refresh && request.method == .head) else {
            throw Refusal(
                status: 405, error: "method_not_allowed",
                message: refresh ? "use POST with {\"version\": N}" : "use GET (POST is for .../refresh)",
                allow: refresh ? "POST" : "GET, HEAD")
        }
        let wait = try Self.wait(request.query("wait"))
        if refresh {
            self = .refresh(service: service, newerThan: try Self.version(in: request.body), wait: wait)
        } else {
            self = .token(service: service, wait: wait)
        }
    }

    /// `?wait=`: a duration (`250ms`, `10s`, `1m`; `0` for none), cut to ``maxWait``.
    static func wait(_ text: String?) throws(Refusal) -> Duration {
        guard let text else { return defaultWait }
        if ["0", "0s", "0ms"].contains(text) { return .zero }
        guard let duration = parseDuration(text) else {
            throw Refusal(
                status: 400, error: "bad_request",
                message: "wait must be a duration such as 10s, 500ms or 0 (at most \(maxWait.shortDescription))")
        }
        return min(duration, maxWait)
    }

    /// The `version` of a refresh body `{"version": N}`: a whole number from 0, or a string of
    /// digits (as form-built bodies send it).
    static func version(in body: [UInt8]) throws(Refusal) -> Int64 {
        guard body.count <= maxBodyBytes else {
            throw Refusal(
                status: 413, error: "too_large", message: "the body must be at most \(maxBodyBytes) bytes")
        }
        let malformed = Refusal(
            status: 400, error: "bad_request",
            message: "the body must be a JSON object {\"version\": N}, N the version that failed (0 or more)")
        guard let body = try? JSONDecoder().decode(Body.self, from: Data(body)), body.version >= 0 else {
            throw malformed
        }
        return body.version
    }

    private struct Body: Decodable {
        let version: Int64

        enum CodingKeys: String, CodingKey { case version }

        init(from decoder: any Decoder) throws {
            let container = try decoder.container(keyedBy: CodingKeys.self)
            if let number = try? container.decode(Int64.self, forKey: .version) {
                version = number
            } else {
                let text = try container.decode(String.self, forKey: .version)
                guard !text.isEmpty, text.utf8.allSatisfy({ (0x30...0x39).contains($0) }), let number = Int64(text)
                else {
                    throw DecodingError.dataCorruptedError(
                        forKey: .version, in: container, debugDescription: "not a whole number")
                }
                version = number
            }
        }
    }
}
