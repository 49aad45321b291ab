import Foundation

#if canImport(FoundationNetworking)
    import FoundationNetworking
#endif

/// An HTTP client for `baton serve`'s token API in tests (Foundation's URLSession, over libcurl
/// on Linux), with enough connections per host for 50 callers at once.
struct TokenAPIClient: Sendable {
    /// One answer.
    struct Answer: Sendable, CustomStringConvertible {
        let status: Int
        let headers: [String: String]
        let body: Data

        /// The body as a JSON object (empty when it is not one).
        var json: [String: Any] {
            ((try? JSONSerialization.jsonObject(with: body)) as? [String: Any]) ?? [:]
        }
        var text: String { String(decoding: body, as: UTF8.self) }
        /// A header, by its lower-case name.
        func header(_ name: String) -> String? { headers[name.lowercased()] }
        var description: String { "\(status) \(text)" }
    }

    let base: String
    private let session: URLSession

    init(port: Int) {
        base = "http://127.0.0.1:\(port)"
        let configuration = URLSessionConfiguration.ephemeral
        configuration.httpMaximumConnectionsPerHost = 64
        configuration.timeoutIntervalForRequest = 90
        session = URLSession(configuration: configuration)
    }

    /// Sends `method` to `path` (with its query) with `Authorization: Bearer key` when `key` is set.
    func send(_ method: String, _ path: String, key: String?, body: String? = nil) async throws -> Answer {
        var request = URLRequest(url: URL(string: base + path)!)
        request.httpMethod = method
        if let key { request.setValue("Bearer \(key)", forHTTPHeaderField: "Authorization") }
        if let body {
            request.httpBody = Data(body.utf8)
            request.setValue("application/json", forHTTPHeaderField: "Content-Type")
        }
        return try await withCheckedThrowingContinuation { continuation in
            session.dataTask(with: request) { data, response, error in
                if let error { return continuation.resume(throwing: error) }
                let http = response as? HTTPURLResponse
                var headers: [String: String] = [:]
                for (name, value) in http?.allHeaderFields ?? [:] {
                    if let name = name as? String, let value = value as? String { headers[name.lowercased()] = value }
                }
                continuation.resume(
                    returning: Answer(status: http?.statusCode ?? -1, headers: headers, body: data ?? Data()))
            }.resume()
        }
    }

    /// `GET /v1/tokens/service[?wait=...]`.
    func token(_ service: String, key: String?, wait: String? = nil) async throws -> Answer {
        try await send("GET", "/v1/tokens/\(service)" + (wait.map { "?wait=\($0)" } ?? ""), key: key)
    }

    /// `POST /v1/tokens/service/refresh[?wait=...]` with `body`.
    func refresh(_ service: String, key: String?, body: String, wait: String? = nil) async throws -> Answer {
        try await send(
            "POST", "/v1/tokens/\(service)/refresh" + (wait.map { "?wait=\($0)" } ?? ""), key: key, body: body)
    }
}
