import BatonSupport
internal import CTLS
import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// Why a socket operation failed, before ``RedisConnection`` puts it in the words of a command.
enum SocketFailure: Error {
    /// The deadline passed.
    case timedOut
    /// The server closed the connection (end of stream, or a TLS close).
    case closedByPeer
    /// A system call failed with this `errno`.
    case system(Int32)
    /// OpenSSL failed after the handshake, with its text.
    case tls(String)

    var reason: String {
        switch self {
        case .timedOut: return "timed out"
        case .closedByPeer: return "the server closed the connection"
        case .system(let code): return String(cString: strerror(code))
        case .tls(let text): return "TLS error: \(text)"
        }
    }
}

extension SocketFailure {
    /// The ``RedisError`` for this failure while `command` was in flight on a connection to
    /// `address`. A failure before the connection's first reply gets the likely cause: a plain
    /// client on a TLS port is reset, a TLS client without the certificate a server requires
    /// gets an alert.
    func redisError(
        address: String, command: String, operation: String, limit: Duration?, beforeFirstReply: Bool, isTLS: Bool
    ) -> RedisError {
        switch self {
        case .timedOut:
            return .timeout(address: address, operation: operation, after: limit ?? .zero)
        case .closedByPeer where beforeFirstReply && isTLS, .system(ECONNRESET) where beforeFirstReply && isTLS:
            // TLS 1.3 finishes the handshake before the server checks the client's certificate;
            // a refusal then arrives as an alert, or as a reset that overtakes it.
            return .tlsFailed(
                address: address,
                reason:
                    "the server ended the TLS session before its first reply (\(reason)): if it requires a client certificate, set tls_cert_file and tls_key_file"
            )
        case .closedByPeer, .system(ECONNRESET):
            let hint =
                beforeFirstReply && !isTLS ? " before its first reply (if this port speaks TLS, use rediss://)" : ""
            return .connectionLost(address: address, command: command, reason: reason + hint)
        case .tls(let text) where beforeFirstReply:
            let hint =
                text.contains("certificate")
                ? " (the server wants a client certificate it trusts: set tls_cert_file and tls_key_file)" : ""
            return .tlsFailed(address: address, reason: "the server ended the session: \(text)\(hint)")
        default:
            return .connectionLost(address: address, command: command, reason: reason)
        }
    }
}

// @unchecked: one owner at a time, like the connection that holds it.
/// One connected socket to one Redis server, plain or TLS, that Baton owns: non-blocking file
/// descriptor, `poll(2)` for every wait, deadlines on every call.
///
/// TCP sockets get `TCP_NODELAY` (requests are written whole) and keepalive probes. TLS runs
/// through OpenSSL on the same descriptor (``TLSContext``); the handshake verifies the chain and
/// the server's name unless the options say `tls_insecure`.
final class RedisSocket: @unchecked Sendable {
    /// The address this socket is connected to, for messages.
    let address: String
    private let descriptor: Int32
    private var tls: OpaquePointer?

    private init(address: String, descriptor: Int32) {
        self.address = address
        self.descriptor = descriptor
    }

    deinit {
        if let tls { SSL_free(tls) }
        Glibc.close(descriptor)
    }

    /// Whether this socket speaks TLS.
    var isTLS: Bool { tls != nil }

    // MARK: - Connecting

    /// Connects to `transport` and, with `tlsOptions`, completes a verified TLS handshake.
    /// - Throws: ``RedisError/connectionRefused(address:)``, ``RedisError/timeout(address:operation:after:)``,
    ///   ``RedisError/connectionFailed(address:reason:)`` or ``RedisError/tlsFailed(address:reason:)``.
    static func connect(
        to transport: RedisEndpoint.Transport, tls tlsOptions: RedisTLSOptions?, timeout: Duration, keepAlive: Bool
    ) throws -> RedisSocket {
        let address = RedisEndpoint.address(of: transport)
        let deadline = ContinuousClock.now + timeout
        let socket: RedisSocket
        switch transport {
        case .tcp(let host, let port):
            socket = try connectTCP(host: host, port: port, address: address, deadline: deadline, timeout: timeout)
            socket.configureTCP(keepAlive: keepAlive)
        case .unix(let path):
            socket = try connectUnix(path: path, deadline: deadline, timeout: timeout)
        }
        if let tlsOptions {
            guard case .tcp(let host, _) = transport else {
                throw RedisError.tlsFailed(address: address, reason: "TLS needs a TCP host, not a Unix socket")
            }
            try socket.startTLS(
                context: TLSContext.shared(for: tlsOptions, address: address), host: host, deadline: deadline,
                timeout: timeout)
        }
        return socket
    }

    private static func connectTCP(
        host: String, port: Int, address: String, deadline: ContinuousClock.Instant, timeout: Duration
    )
        throws -> RedisSocket
    {
        var hints = addrinfo()
        hints.ai_family = AF_UNSPEC
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        var results: UnsafeMutablePointer<addrinfo>?
        let status = getaddrinfo(host, String(port), &hints, &results)
        guard status == 0, let first = results else {
            throw RedisError.connectionFailed(
                address: address, reason: "cannot resolve '\(host)': \(String(cString: gai_strerror(status)))")
        }
        defer { freeaddrinfo(results) }
        var lastError: RedisError = .connectionFailed(address: address, reason: "no usable address for '\(host)'")
        var candidate: UnsafeMutablePointer<addrinfo>? = first
        while let info = candidate {
            candidate = info.pointee.ai_next
            let descriptor = Glibc.socket(
                info.pointee.ai_family,
                Int32(SOCK_STREAM.rawValue) | Int32(SOCK_NONBLOCK.rawValue)
                    | Int32(SOCK_CLOEXEC.rawValue), 0)
            guard descriptor >= 0 else { continue }
            let socket = RedisSocket(address: address, descriptor: descriptor)
            do {
                try socket.finishConnect(
                    Glibc.connect(descriptor, info.pointee.ai_addr, info.pointee.ai_addrlen), deadline: deadline,
                    timeout: timeout)
                return socket
            } catch let error as RedisError {
                lastError = error
            }
        }
        throw lastError
    }

    private static func connectUnix(path: String, deadline: ContinuousClock.Instant, timeout: Duration) throws
        -> RedisSocket
    {
        var socketAddress = sockaddr_un()
        socketAddress.sun_family = sa_family_t(AF_UNIX)
        let capacity = MemoryLayout.size(ofValue: socketAddress.sun_path)
        guard path.utf8.count < capacity else {
            throw RedisError.connectionFailed(
                address: path, reason: "the socket path is longer than \(capacity - 1) bytes")
        }
        withUnsafeMutableBytes(of: &socketAddress.sun_path) { buffer in
            buffer.copyBytes(from: path.utf8)
        }
        let descriptor = Glibc.socket(
            AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_NONBLOCK.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard descriptor >= 0 else {
            throw RedisError.connectionFailed(address: path, reason: String(cString: strerror(errno)))
        }
        let socket = RedisSocket(address: path, descriptor: descriptor)
        let result = withUnsafePointer(to: &socketAddress) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                Glibc.connect(descriptor, $0, socklen_t(MemoryLayout<sockaddr_un>.size))
            }
        }
        try socket.finishConnect(result, deadline: deadline, timeout: timeout)
        return socket
    }

    /// Waits for a non-blocking `connect(2)` and classifies its outcome by `errno`.
    private func finishConnect(_ result: Int32, deadline: ContinuousClock.Instant, timeout: Duration) throws {
        var code: Int32 = result == 0 ? 0 : errno
        if code == EINPROGRESS || code == EAGAIN {
            do {
                try wait(for: Int16(POLLOUT), until: deadline)
            } catch .timedOut {
                throw RedisError.timeout(address: address, operation: "connect", after: timeout)
            } catch {
                throw RedisError.connectionFailed(address: address, reason: error.reason)
            }
            var length = socklen_t(MemoryLayout<Int32>.size)
            getsockopt(descriptor, SOL_SOCKET, SO_ERROR, &code, &length)
        }
        switch code {
        case 0: return
        case ECONNREFUSED: throw RedisError.connectionRefused(address: address)
        case ETIMEDOUT: throw RedisError.timeout(address: address, operation: "connect", after: timeout)
        default: throw RedisError.connectionFailed(address: address, reason: String(cString: strerror(code)))
        }
    }

    private func configureTCP(keepAlive: Bool) {
        var on: Int32 = 1
        setsockopt(descriptor, Int32(IPPROTO_TCP), TCP_NODELAY, &on, socklen_t(MemoryLayout<Int32>.size))
        guard keepAlive else { return }
        setsockopt(descriptor, SOL_SOCKET, SO_KEEPALIVE, &on, socklen_t(MemoryLayout<Int32>.size))
        // First probe after 15 s idle, then every 5 s, dead after 3 unanswered: a vanished server
        // (a VM gone, a cable pulled) is noticed in about 30 s even by a connection that only waits.
        for (option, value) in [(TCP_KEEPIDLE, Int32(15)), (TCP_KEEPINTVL, 5), (TCP_KEEPCNT, 3)] {
            var value = value
            setsockopt(descriptor, Int32(IPPROTO_TCP), option, &value, socklen_t(MemoryLayout<Int32>.size))
        }
    }

    // MARK: - TLS handshake

    private func startTLS(context: TLSContext, host: String, deadline: ContinuousClock.Instant, timeout: Duration)
        throws
    {
        ERR_clear_error()
        guard let session = SSL_new(context.context) else {
            throw RedisError.tlsFailed(
                address: address, reason: "OpenSSL could not create a session: \(TLSContext.lastError())")
        }
        tls = session
        SSL_set_fd(session, descriptor)
        let name = context.options.serverName ?? host
        let isAddressLiteral = Self.isIPAddress(name)
        if !isAddressLiteral { _ = CTLS_set_server_name(session, name) }  // SNI carries host names only
        if !context.options.insecure {
            let verified =
                isAddressLiteral
                ? X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(session), name) : SSL_set1_host(session, name)
            guard verified == 1 else {
                throw RedisError.tlsFailed(address: address, reason: "cannot verify against the name '\(name)'")
            }
        }
        while true {
            ERR_clear_error()
            let result = SSL_connect(session)
            if result == 1 { return }
            let kind = SSL_get_error(session, result)
            let savedErrno = errno
            do {
                switch kind {
                case SSL_ERROR_WANT_READ: try wait(for: Int16(POLLIN), until: deadline)
                case SSL_ERROR_WANT_WRITE: try wait(for: Int16(POLLOUT), until: deadline)
                default: throw handshakeFailure(kind: kind, errno: savedErrno, name: name)
                }
            } catch SocketFailure.timedOut {
                throw RedisError.tlsFailed(
                    address: address,
                    reason:
                        "no TLS handshake within \(timeout.shortDescription): is this a plain port? then use redis:// (or the server's tls-port); otherwise the server may be overloaded"
                )
            }
        }
    }

    private func handshakeFailure(kind: Int32, errno code: Int32, name: String) -> RedisError {
        let verification = tls.map { SSL_get_verify_result($0) } ?? Int(X509_V_OK)
        if verification != Int(X509_V_OK) {
            let text = String(cString: X509_verify_cert_error_string(verification))
            let hint: String
            switch Int32(verification) {
            case X509_V_ERR_HOSTNAME_MISMATCH, X509_V_ERR_IP_ADDRESS_MISMATCH:
                hint = "the server's certificate is not for '\(name)': connect by a name it has, or set tls_server_name"
            case X509_V_ERR_CERT_HAS_EXPIRED:
                hint = "the server's certificate has expired: renew it on the server"
            case X509_V_ERR_CERT_NOT_YET_VALID:
                hint = "the server's certificate is not valid yet: check the clocks"
            default:
                hint = "set tls_ca_file to the CA that signed the server's certificate"
            }
            return .tlsFailed(address: address, reason: "certificate verification failed: \(text) (\(hint))")
        }
        let library = kind == SSL_ERROR_SSL ? TLSContext.lastError() : ""
        if library.contains("wrong version number") || library.contains("packet length too long") {
            return .tlsFailed(
                address: address,
                reason:
                    "the server did not answer in TLS (\(library)): is this a plain port? use redis:// or the TLS port")
        }
        if kind == SSL_ERROR_SYSCALL || kind == SSL_ERROR_ZERO_RETURN {
            let detail = code == 0 ? "the server closed the connection" : String(cString: strerror(code))
            return .tlsFailed(
                address: address,
                reason:
                    "\(detail) during the TLS handshake (does the server require a client certificate? set tls_cert_file and tls_key_file)"
            )
        }
        return .tlsFailed(address: address, reason: library.isEmpty ? "handshake failed" : library)
    }

    private static func isIPAddress(_ text: String) -> Bool {
        var v4 = in_addr()
        var v6 = in6_addr()
        return inet_pton(AF_INET, text, &v4) == 1 || inet_pton(AF_INET6, text, &v6) == 1
    }

    // MARK: - I/O

    /// Writes every byte, waiting for the socket as needed.
    func write(_ bytes: UnsafeRawBufferPointer, deadline: ContinuousClock.Instant?) throws(SocketFailure) {
        var offset = 0
        while offset < bytes.count {
            let chunk = UnsafeRawBufferPointer(rebasing: bytes[offset...])
            if let tls {
                ERR_clear_error()
                let written = SSL_write(tls, chunk.baseAddress, Int32(clamping: chunk.count))
                if written > 0 {
                    offset += Int(written)
                } else {
                    try waitAfterTLS(SSL_get_error(tls, written), errno: errno, deadline: deadline)
                }
            } else {
                let written = send(descriptor, chunk.baseAddress, chunk.count, Int32(MSG_NOSIGNAL))
                if written > 0 {
                    offset += written
                } else if written < 0 && (errno == EAGAIN || errno == EWOULDBLOCK) {
                    try wait(for: Int16(POLLOUT), until: deadline)
                } else if written < 0 && errno == EINTR {
                    continue
                } else {
                    throw .system(written == 0 ? EPIPE : errno)
                }
            }
        }
    }

    /// Reads what is available (at least one byte), waiting until `deadline`.
    /// - Returns: the number of bytes read into `buffer`.
    func read(into buffer: UnsafeMutableRawBufferPointer, deadline: ContinuousClock.Instant?) throws(SocketFailure)
        -> Int
    {
        while true {
            if let tls {
                ERR_clear_error()
                let count = SSL_read(tls, buffer.baseAddress, Int32(clamping: buffer.count))
                if count > 0 { return Int(count) }
                try waitAfterTLS(SSL_get_error(tls, count), errno: errno, deadline: deadline)
            } else {
                let count = recv(descriptor, buffer.baseAddress, buffer.count, 0)
                if count > 0 { return count }
                if count == 0 { throw .closedByPeer }
                switch errno {
                case EAGAIN, EWOULDBLOCK: try wait(for: Int16(POLLIN), until: deadline)
                case EINTR: continue
                default: throw .system(errno)
                }
            }
        }
    }

    /// Writes what the socket takes now, without waiting.
    /// - Returns: how many bytes were written (0 when the socket is full).
    func writeAvailable(_ bytes: UnsafeRawBufferPointer) throws(SocketFailure) -> Int {
        guard !bytes.isEmpty else { return 0 }
        while true {
            if let tls {
                ERR_clear_error()
                let written = SSL_write(tls, bytes.baseAddress, Int32(clamping: bytes.count))
                if written > 0 { return Int(written) }
                let kind = SSL_get_error(tls, written)
                if kind == SSL_ERROR_WANT_WRITE || kind == SSL_ERROR_WANT_READ { return 0 }
                try waitAfterTLS(kind, errno: errno, deadline: nil)
            } else {
                let written = send(descriptor, bytes.baseAddress, bytes.count, Int32(MSG_NOSIGNAL))
                if written >= 0 { return written }
                switch errno {
                case EAGAIN, EWOULDBLOCK: return 0
                case EINTR: continue
                default: throw .system(errno)
                }
            }
        }
    }

    /// Reads what has arrived, without waiting.
    /// - Returns: how many bytes were read into `buffer` (0 when nothing is there yet).
    /// - Throws: ``SocketFailure/closedByPeer`` at the end of the stream.
    func readAvailable(into buffer: UnsafeMutableRawBufferPointer) throws(SocketFailure) -> Int {
        while true {
            if let tls {
                ERR_clear_error()
                let count = SSL_read(tls, buffer.baseAddress, Int32(clamping: buffer.count))
                if count > 0 { return Int(count) }
                let kind = SSL_get_error(tls, count)
                if kind == SSL_ERROR_WANT_READ || kind == SSL_ERROR_WANT_WRITE { return 0 }
                try waitAfterTLS(kind, errno: errno, deadline: nil)
            } else {
                let count = recv(descriptor, buffer.baseAddress, buffer.count, 0)
                if count > 0 { return count }
                if count == 0 { throw .closedByPeer }
                switch errno {
                case EAGAIN, EWOULDBLOCK: return 0
                case EINTR: continue
                default: throw .system(errno)
                }
            }
        }
    }

    /// The file descriptor, for a `poll(2)` over several sockets (``PipelinedConnection``).
    var fileDescriptor: Int32 { descriptor }

    /// Whether OpenSSL holds decrypted bytes that `poll(2)` cannot see.
    var hasBufferedInput: Bool { tls.map { SSL_pending($0) > 0 } ?? false }

    /// Whether an idle connection has been closed by the server or holds unexpected data (either
    /// way it must not be used). TLS sessions may legitimately receive post-handshake messages
    /// (TLS 1.3 session tickets); those are consumed here and do not count.
    func isClosedOrOutOfStep() -> Bool {
        guard isReadable(within: .zero) else { return false }
        guard let tls else { return true }
        var byte: UInt8 = 0
        ERR_clear_error()
        let count = SSL_peek(tls, &byte, 1)
        return !(count <= 0 && SSL_get_error(tls, count) == SSL_ERROR_WANT_READ)
    }

    /// Whether a read would return something within `timeout` (buffered TLS records included).
    func isReadable(within timeout: Duration) -> Bool {
        if let tls, SSL_pending(tls) > 0 { return true }
        var entry = pollfd(fd: descriptor, events: Int16(POLLIN), revents: 0)
        while true {
            let ready = poll(&entry, 1, Int32(clamping: timeout.milliseconds))
            if ready < 0 && errno == EINTR { continue }
            return ready != 0
        }
    }

    private func waitAfterTLS(_ kind: Int32, errno code: Int32, deadline: ContinuousClock.Instant?)
        throws(SocketFailure)
    {
        switch kind {
        case SSL_ERROR_WANT_READ: try wait(for: Int16(POLLIN), until: deadline)
        case SSL_ERROR_WANT_WRITE: try wait(for: Int16(POLLOUT), until: deadline)
        case SSL_ERROR_ZERO_RETURN: throw .closedByPeer
        case SSL_ERROR_SYSCALL: throw code == 0 ? .closedByPeer : .system(code)
        default: throw .tls(TLSContext.lastError())
        }
    }

    /// Waits until the socket is ready for `events` or `deadline` passes (`nil`: forever).
    private func wait(for events: Int16, until deadline: ContinuousClock.Instant?) throws(SocketFailure) {
        var entry = pollfd(fd: descriptor, events: events, revents: 0)
        while true {
            var milliseconds: Int32 = -1
            if let deadline {
                let remaining = deadline - ContinuousClock.now
                if remaining <= .zero { throw .timedOut }
                milliseconds = Int32(clamping: max(1, remaining.roundedUpMilliseconds))
            }
            let ready = poll(&entry, 1, milliseconds)
            if ready > 0 { return }  // readable, writable, or an error that the next call reports
            if ready < 0 && errno != EINTR { throw .system(errno) }
        }
    }
}

extension Duration {
    /// Whole milliseconds, rounded up, so that a wait never ends before its deadline.
    fileprivate var roundedUpMilliseconds: Int64 {
        let (seconds, attoseconds) = components
        return seconds * 1000 + (attoseconds + 999_999_999_999_999) / 1_000_000_000_000_000
    }
}
