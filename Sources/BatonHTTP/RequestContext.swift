/// What the listener knows of one request while libmicrohttpd delivers it: the parsed head, the
/// body so far, and (once the handler has answered) the response.
///
/// Lives in libmicrohttpd's per-request pointer (`con_cls`), retained from the first callback
/// until the request-completed callback. Touched on libmicrohttpd's thread, except ``response``,
/// which ``ListenerCore`` writes and reads under its lock.
// @unchecked: see above; the fields other than `response` never leave libmicrohttpd's thread.
final class RequestContext: @unchecked Sendable {
    let method: HTTPMethod
    let path: String
    let headers: [(name: String, value: String)]
    let queryParameters: [(name: String, value: String)]
    var body: [UInt8] = []
    /// Set once the request went to the handler (the next callback follows the resume).
    var dispatched = false
    /// Set (under the core's lock, before the resume) when ``ListenerCore/stop()`` answered it.
    var answeredAtStop = false
    var response: HTTPResponse?

    init(
        method: HTTPMethod, path: String, headers: [(name: String, value: String)],
        queryParameters: [(name: String, value: String)]
    ) {
        self.method = method
        self.path = path
        self.headers = headers
        self.queryParameters = queryParameters
    }

    /// The complete request, for the handler.
    func request() -> HTTPRequest {
        HTTPRequest(method: method, path: path, queryParameters: queryParameters, headers: headers, body: body)
    }
}
