/// One complete HTTP request, as libmicrohttpd parsed it.
public struct HTTPRequest: Sendable {
    /// The method.
    public let method: HTTPMethod
    /// The path, percent-decoded, without the query string (`/v1/tokens/a b/refresh`).
    public let path: String
    /// The query parameters in order, percent-decoded; a parameter without `=` has an empty value.
    public let queryParameters: [(name: String, value: String)]
    /// The header fields in the order received, names as sent.
    public let headers: [(name: String, value: String)]
    /// The body: at most ``HTTPListener/Limits/maxBodyBytes`` bytes.
    public let body: [UInt8]

    /// Creates a request (the listener does; tests and routers may too).
    public init(
        method: HTTPMethod, path: String, queryParameters: [(name: String, value: String)] = [],
        headers: [(name: String, value: String)] = [], body: [UInt8] = []
    ) {
        self.method = method
        self.path = path
        self.queryParameters = queryParameters
        self.headers = headers
        self.body = body
    }

    /// The first header field called `name`, compared case-insensitively (`content-type` finds
    /// `Content-Type`); `nil` when absent.
    public func header(_ name: String) -> String? {
        let wanted = name.lowercased()
        return headers.first { $0.name.lowercased() == wanted }?.value
    }

    /// The first query parameter called `name` (case-sensitive); `nil` when absent.
    public func query(_ name: String) -> String? {
        queryParameters.first { $0.name == name }?.value
    }
}
