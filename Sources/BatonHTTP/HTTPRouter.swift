import BatonSupport

/// Routes requests by path and method, the one place where every module's routes are registered.
///
/// ```swift
/// let router = HTTPRouter()
/// router.add(.get, "/livez") { _ in .text(200, "ok") }
/// router.add([.post], prefix: "/v1/tokens/") { request in ... }
/// let listener = try HTTPListener(address: "127.0.0.1", port: 9464, handler: router.handle)
/// ```
///
/// An exact path wins over a prefix, and a longer prefix over a shorter one. A route that allows
/// `GET` allows `HEAD` too. A path no route matches gets 404; a method the matching route does
/// not allow gets 405 with an `Allow` header. Routes may be added while the listener runs.
public final class HTTPRouter: Sendable {
    /// Answers one routed request.
    public typealias Handler = @Sendable (HTTPRequest) async -> HTTPResponse

    private struct Route: Sendable {
        let path: String
        let isPrefix: Bool
        let methods: Set<HTTPMethod>
        let handler: Handler
    }

    private let routes = LockedBox<[Route]>([])

    /// Creates a router without routes (every request gets 404).
    public init() {}

    /// Routes requests for exactly `path` with `method` (and `HEAD` for `GET`) to `handler`.
    public func add(_ method: HTTPMethod, _ path: String, handler: @escaping Handler) {
        add([method], path, handler: handler)
    }

    /// Routes requests for exactly `path` with any of `methods` to `handler`.
    public func add(_ methods: Set<HTTPMethod>, _ path: String, handler: @escaping Handler) {
        insert(Route(path: path, isPrefix: false, methods: Self.expanded(methods), handler: handler))
    }

    /// Routes requests for every path that starts with `prefix` (say `/v1/tokens/`) with any of
    /// `methods` to `handler`, which reads the rest of ``HTTPRequest/path`` itself.
    public func add(_ methods: Set<HTTPMethod>, prefix: String, handler: @escaping Handler) {
        insert(Route(path: prefix, isPrefix: true, methods: Self.expanded(methods), handler: handler))
    }

    /// Answers `request` through its route, or 404/405. Pass it as the listener's handler.
    @Sendable public func handle(_ request: HTTPRequest) async -> HTTPResponse {
        guard let route = match(request.path) else {
            return .text(404, "not found: \(request.path.prefix(200))")
        }
        guard route.methods.contains(request.method) else {
            let allowed = route.methods.map(\.rawValue).sorted().joined(separator: ", ")
            return .text(405, "method \(request.method.rawValue.prefix(20)) not allowed", headers: [("Allow", allowed)])
        }
        return await route.handler(request)
    }

    private func match(_ path: String) -> Route? {
        routes.withLockedValue { routes in
            routes.first { !$0.isPrefix && $0.path == path }
                ?? routes.filter { $0.isPrefix && path.hasPrefix($0.path) }.max { $0.path.count < $1.path.count }
        }
    }

    private func insert(_ route: Route) {
        routes.withLockedValue { routes in
            routes.removeAll { $0.path == route.path && $0.isPrefix == route.isPrefix }
            routes.append(route)
        }
    }

    private static func expanded(_ methods: Set<HTTPMethod>) -> Set<HTTPMethod> {
        methods.contains(.get) ? methods.union([.head]) : methods
    }
}
