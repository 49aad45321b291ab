import Foundation

/// An HTTP answer. The listener adds `Content-Length` (and `Date`); for `HEAD` it sends the
/// headers only.
public struct HTTPResponse: Sendable {
    /// The status code, such as 200.
    public var status: Int
    /// Header fields in order (`Content-Type`, `Allow`, ...).
    public var headers: [(name: String, value: String)]
    /// The body.
    public var body: [UInt8]

    /// Creates a response.
    public init(status: Int, headers: [(name: String, value: String)] = [], body: [UInt8] = []) {
        self.status = status
        self.headers = headers
        self.body = body
    }

    /// A `text/plain; charset=utf-8` answer; a final newline is added when missing.
    public static func text(_ status: Int, _ text: String, headers: [(name: String, value: String)] = [])
        -> HTTPResponse
    {
        let line = text.hasSuffix("\n") ? text : text + "\n"
        return HTTPResponse(
            status: status, headers: [("Content-Type", "text/plain; charset=utf-8")] + headers,
            body: Array(line.utf8))
    }

    /// An `application/json` answer with `value` encoded (keys sorted). An unencodable value is a
    /// bug: it becomes a 500 naming the error.
    public static func json(_ status: Int, _ value: some Encodable) -> HTTPResponse {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        do {
            return HTTPResponse(
                status: status, headers: [("Content-Type", "application/json")],
                body: Array(try encoder.encode(value)))
        } catch {
            return .text(500, "cannot encode the answer: \(error)")
        }
    }

    /// The first header field called `name`, compared case-insensitively.
    public func header(_ name: String) -> String? {
        let wanted = name.lowercased()
        return headers.first { $0.name.lowercased() == wanted }?.value
    }
}
