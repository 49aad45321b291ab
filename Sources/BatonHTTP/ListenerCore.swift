internal import CMicroHTTPD
internal import CMicroHTTPDShim
import Foundation

/// The state behind one ``HTTPListener``: the daemon, the memory handed to C, and the requests
/// whose handler is running (their connections suspended).
///
/// **Ownership:** the `MHD_Daemon*` belongs to this object; ``stop()`` frees it, and the C
/// settings and buffers live until `deinit`, after the daemon's thread has ended. `lock` guards
/// `daemon`, `waiting` and `stopped`, and is held across `MHD_suspend_connection` and
/// `MHD_resume_connection` so that a connection is resumed exactly once, and never after stop.
// @unchecked: `lock` guards every mutable field; `limits` and `handler` are constants.
final class ListenerCore: @unchecked Sendable {
    let limits: HTTPListener.Limits
    let handler: @Sendable (HTTPRequest) async -> HTTPResponse
    private let lock = NSLock()
    private var daemon: OpaquePointer?
    private var waiting: [ObjectIdentifier: (request: RequestContext, connection: OpaquePointer)] = [:]
    private var stopped = false
    /// Requests answered 503 by ``stop()`` and not yet sent; ``stop()`` waits for them a little.
    private let stopping = NSCondition()
    private var unsentAtStop = 0
    private let settings = UnsafeMutablePointer<CMicroHTTPDShim_settings>.allocate(capacity: 1)
    private let errorBuffer = UnsafeMutablePointer<CChar>.allocate(capacity: 512)
    private var addressBytes: UnsafeMutableRawPointer?

    init(limits: HTTPListener.Limits, handler: @escaping @Sendable (HTTPRequest) async -> HTTPResponse) {
        self.limits = limits
        self.handler = handler
        errorBuffer.initialize(to: 0)
    }

    deinit {
        addressBytes?.deallocate()
        settings.deallocate()
        errorBuffer.deallocate()
    }

    /// Starts the daemon. Returns it, or `nil` with `errno` and libmicrohttpd's last message.
    func start(_ address: SocketAddress) -> (OpaquePointer?, Int32, String) {
        let bytes = UnsafeMutableRawPointer.allocate(byteCount: address.storage.count, alignment: 8)
        bytes.copyMemory(from: address.storage, byteCount: address.storage.count)
        addressBytes = bytes
        let context = Unmanaged.passUnretained(self).toOpaque()
        settings.initialize(
            to: CMicroHTTPDShim_settings(
                address: bytes.assumingMemoryBound(to: sockaddr.self), ipv6: address.isIPv6 ? 1 : 0,
                connection_limit: UInt32(clamping: limits.maxConnections),
                per_ip_connection_limit: UInt32(clamping: limits.maxConnectionsPerIP),
                connection_timeout_seconds: UInt32(clamping: max(1, limits.connectionTimeout.components.seconds)),
                connection_memory_limit: max(4096, limits.memoryPerConnection),
                handler: accessHandler, handler_context: context,
                completed: requestCompleted, completed_context: context,
                error_buffer: errorBuffer, error_capacity: 512))
        var errorNumber: Int32 = 0
        let started = CMicroHTTPDShim_start(settings, &errorNumber)
        lock.withLock { daemon = started }
        return (started, errorNumber, String(cString: errorBuffer))
    }

    /// Resumes every waiting connection with 503, waits up to ``stopGrace`` for those answers to
    /// be sent, then stops the daemon (closing every connection and joining its thread).
    func stop() {
        let daemon: OpaquePointer? = lock.withLock {
            guard !stopped else { return nil }
            stopped = true
            stopping.withLock { unsentAtStop = waiting.count }
            for (request, connection) in waiting.values {
                request.response = .text(503, "shutting down")
                request.answeredAtStop = true
                MHD_resume_connection(connection)
            }
            waiting = [:]
            return self.daemon
        }
        guard let daemon else { return }
        let deadline = Date(timeIntervalSinceNow: Self.stopGrace.seconds)
        stopping.withLock {
            while unsentAtStop > 0 && stopping.wait(until: deadline) {}
        }
        MHD_stop_daemon(daemon)
    }

    /// How long ``stop()`` waits for the 503 answers it queued.
    static let stopGrace: Duration = .seconds(1)

    /// Called on libmicrohttpd's thread when a request answered by ``stop()`` is done.
    func sentAtStop() {
        stopping.withLock {
            unsentAtStop -= 1
            stopping.broadcast()
        }
    }

    /// Called on libmicrohttpd's thread once `request` is complete: suspends the connection and
    /// runs the handler in a task; the answer is queued when the connection comes back.
    /// - Returns: `false` when the listener is stopping (answer 503 at once instead).
    func dispatch(_ request: RequestContext, connection: OpaquePointer) -> Bool {
        let accepted: Bool = lock.withLock {
            guard !stopped else { return false }
            waiting[ObjectIdentifier(request)] = (request, connection)
            MHD_suspend_connection(connection)
            return true
        }
        guard accepted else { return false }
        let parsed = request.request()
        Task { [self] in
            let response = await handler(parsed)
            finish(request, response: response)
        }
        return true
    }

    /// Stores the answer and resumes the connection, unless ``stop()`` already answered it.
    private func finish(_ request: RequestContext, response: HTTPResponse) {
        lock.withLock {
            guard let entry = waiting.removeValue(forKey: ObjectIdentifier(request)) else { return }
            request.response = response
            MHD_resume_connection(entry.connection)
        }
    }

    /// The answer for a resumed connection (read under the lock its writer held).
    func response(of request: RequestContext) -> HTTPResponse? {
        lock.withLock { request.response }
    }
}
