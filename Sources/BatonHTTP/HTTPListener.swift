internal import CMicroHTTPD
internal import CMicroHTTPDShim
import Foundation

/// An HTTP/1.1 server on one address, parsed by GNU libmicrohttpd, that hands each complete
/// request to an `async` handler.
///
/// **Threading:** libmicrohttpd runs one internal polling thread (epoll or poll) that reads,
/// parses and writes every connection; it never runs a handler. When a request is complete the
/// connection is suspended (`MHD_suspend_connection`), the handler runs in its own `Task`, and
/// when it returns the connection is resumed (`MHD_resume_connection`) and the answer queued.
/// A handler that awaits for seconds therefore holds no thread, and slow handlers never delay
/// other connections.
///
/// **Limits** (``Limits``): total and per-client-address connections, an idle timeout per
/// connection, memory per connection (which bounds the request line and headers: a request
/// whose headers do not fit gets 431 or is closed), and the body size (a declared
/// `Content-Length` above it gets 413 at once and the body is never read; a chunked body that
/// grows past it closes the connection).
///
/// Method and path checks belong to the handler (``HTTPRouter``), so a route may take `POST`.
public final class HTTPListener: Sendable {
    /// The listener's bounds. Every default is chosen for probes and a metrics scrape.
    public struct Limits: Sendable {
        /// Connections open at once, suspended ones included; more are refused at accept.
        /// Default: 64.
        public var maxConnections: Int
        /// Connections open at once from one client address. Default: 16, so one client (a
        /// trickling slowloris) cannot take every connection.
        public var maxConnectionsPerIP: Int
        /// A connection idle (nothing received or sent) this long is closed; whole seconds, at
        /// least 1. Suspended connections (a handler running) do not time out. Default: 10 s.
        public var connectionTimeout: Duration
        /// Memory per connection, which bounds the request line and headers. Default: 32 KiB.
        public var memoryPerConnection: Int
        /// The largest request body accepted. Default: 16 KiB.
        public var maxBodyBytes: Int

        /// Creates limits; every argument has the documented default.
        public init(
            maxConnections: Int = 64, maxConnectionsPerIP: Int = 16, connectionTimeout: Duration = .seconds(10),
            memoryPerConnection: Int = 32 * 1024, maxBodyBytes: Int = 16 * 1024
        ) {
            self.maxConnections = maxConnections
            self.maxConnectionsPerIP = maxConnectionsPerIP
            self.connectionTimeout = connectionTimeout
            self.memoryPerConnection = memoryPerConnection
            self.maxBodyBytes = maxBodyBytes
        }
    }

    /// The address given to ``init(address:port:limits:handler:)``.
    public let address: String
    /// The port listened on: the one asked for, or the one the kernel chose for port 0.
    public let boundPort: Int
    private let core: ListenerCore

    /// Binds `address`:`port` and starts answering.
    /// - Parameters:
    ///   - address: a numeric IPv4 or IPv6 address without brackets (`127.0.0.1`, `0.0.0.0` for
    ///     every IPv4 interface, `::1`, `::` for every IPv6 one).
    ///   - port: 1...65535, or 0 for an ephemeral port (read ``boundPort``).
    ///   - limits: the bounds; default ``Limits/init(maxConnections:maxConnectionsPerIP:connectionTimeout:memoryPerConnection:maxBodyBytes:)``.
    ///   - handler: answers one request; runs in a `Task` of its own, may await as long as it needs.
    /// - Throws: ``HTTPListenerError`` naming the address and why it could not be bound.
    public init(
        address: String, port: Int, limits: Limits = Limits(),
        handler: @escaping @Sendable (HTTPRequest) async -> HTTPResponse
    ) throws(HTTPListenerError) {
        guard let socketAddress = SocketAddress(address: address, port: port) else {
            throw HTTPListenerError(address: address, port: port, reason: .invalidAddress)
        }
        let core = ListenerCore(limits: limits, handler: handler)
        let (daemon, errorNumber, message) = core.start(socketAddress)
        guard let daemon else {
            throw HTTPListenerError(
                address: address, port: port, reason: Self.reason(errno: errorNumber, message: message))
        }
        self.address = address
        self.core = core
        boundPort = Int(CMicroHTTPDShim_bound_port(daemon))
    }

    deinit {
        core.stop()
    }

    /// Stops listening and closes every connection; requests whose handler is still running get
    /// 503. Idempotent; returns once libmicrohttpd's thread has ended.
    public func stop() {
        core.stop()
    }

    private static func reason(errno: Int32, message: String) -> HTTPListenerError.Reason {
        switch errno {
        case EADDRINUSE: return .addressInUse
        case EACCES: return .permissionDenied
        case EADDRNOTAVAIL: return .addressNotAvailable
        default:
            // libmicrohttpd may overwrite errno while cleaning up; its message still names the cause.
            if message.contains("Address already in use") { return .addressInUse }
            if message.contains("Permission denied") { return .permissionDenied }
            if message.contains("Cannot assign requested address") { return .addressNotAvailable }
            return .other(message: message, errno: errno)
        }
    }
}
