import BatonSupport
import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// A plain TCP connection to the listener under test, so tests can send exactly the bytes they
/// want (partial heads, floods) and see what comes back. Blocking: use it through
/// ``exchange(port:_:source:)`` or on a dedicated thread, never on the cooperative pool.
final class RawHTTPConnection: @unchecked Sendable {
    let descriptor: Int32

    /// Connects to 127.0.0.1:`port`, from `source` (another loopback address, so the per-address
    /// connection limit counts it apart) when given.
    init(port: Int, source: String? = nil, timeout: Duration = .seconds(30)) throws {
        descriptor = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard descriptor >= 0 else { throw POSIXError(.EMFILE) }
        var wait = timeval(tv_sec: Int(timeout.components.seconds), tv_usec: 0)
        setsockopt(descriptor, SOL_SOCKET, SO_RCVTIMEO, &wait, socklen_t(MemoryLayout<timeval>.size))
        setsockopt(descriptor, SOL_SOCKET, SO_SNDTIMEO, &wait, socklen_t(MemoryLayout<timeval>.size))
        if let source {
            var local = Self.address(source, port: 0)
            let bound = withUnsafePointer(to: &local) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                    bind(descriptor, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
                }
            }
            guard bound == 0 else {
                close(descriptor)
                throw POSIXError(POSIXErrorCode(rawValue: errno) ?? .EIO)
            }
        }
        var remote = Self.address("127.0.0.1", port: port)
        let connected = withUnsafePointer(to: &remote) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                connect(descriptor, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            }
        }
        guard connected == 0 else {
            let code = errno
            close(descriptor)
            throw POSIXError(POSIXErrorCode(rawValue: code) ?? .EIO)
        }
    }

    deinit { close(descriptor) }

    /// Sends all of `bytes`; `false` when the peer closed or reset the connection.
    @discardableResult
    func send(_ bytes: [UInt8]) -> Bool {
        var sent = 0
        while sent < bytes.count {
            let count = bytes[sent...].withUnsafeBytes {
                Glibc.send(descriptor, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL))
            }
            if count <= 0 { return false }
            sent += count
        }
        return true
    }

    /// Sends `text` as UTF-8.
    @discardableResult
    func send(_ text: String) -> Bool { send(Array(text.utf8)) }

    /// Reads until the peer closes (or resets) the connection or the receive timeout passes.
    func readToEnd() -> [UInt8] {
        var received: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 16 * 1024)
        while true {
            let count = buffer.withUnsafeMutableBytes { recv(descriptor, $0.baseAddress, $0.count, 0) }
            if count <= 0 { return received }
            received.append(contentsOf: buffer[0..<count])
        }
    }

    /// Whether the peer has closed the connection: a read returns end of file or a reset.
    func isClosedByPeer() -> Bool {
        var byte: UInt8 = 0
        let count = recv(descriptor, &byte, 1, Int32(MSG_DONTWAIT))
        return count == 0 || (count < 0 && errno != EAGAIN && errno != EWOULDBLOCK)
    }

    private static func address(_ text: String, port: Int) -> sockaddr_in {
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr.s_addr = inet_addr(text)
        return address
    }
}

/// The status line and headers of a raw answer, split for assertions (a test reader, not a parser
/// the listener relies on).
struct RawAnswer: Sendable, CustomStringConvertible {
    let status: Int?
    let headers: [String: String]
    let body: String

    init(_ bytes: [UInt8]) {
        let text = String(decoding: bytes, as: UTF8.self)
        let parts = text.components(separatedBy: "\r\n\r\n")
        let head = parts.first?.components(separatedBy: "\r\n") ?? []
        status = head.first.flatMap { line in line.split(separator: " ").dropFirst().first.flatMap { Int($0) } }
        var headers: [String: String] = [:]
        for line in head.dropFirst() {
            guard let colon = line.firstIndex(of: ":") else { continue }
            headers[line[..<colon].lowercased()] = line[line.index(after: colon)...].trimmingCharacters(
                in: .whitespaces)
        }
        self.headers = headers
        body = parts.dropFirst().joined(separator: "\r\n\r\n")
    }

    var description: String {
        "status \(status.map(String.init) ?? "none") headers \(headers) body \(body.prefix(200))"
    }
}

/// Connects, sends `request`, reads the answer to the end, on a thread of its own.
func exchange(port: Int, _ request: [UInt8], source: String? = nil) async throws -> RawAnswer {
    try await runOnDedicatedThread(named: "test-http-client") { () throws -> RawAnswer in
        let connection = try RawHTTPConnection(port: port, source: source)
        connection.send(request)
        return RawAnswer(connection.readToEnd())
    }
}

/// ``exchange(port:_:source:)`` for a text request.
func exchange(port: Int, _ request: String, source: String? = nil) async throws -> RawAnswer {
    try await exchange(port: port, Array(request.utf8), source: source)
}

/// `GET path` with `Connection: close`.
func get(port: Int, _ path: String, method: String = "GET", source: String? = nil) async throws -> RawAnswer {
    try await exchange(
        port: port, "\(method) \(path) HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n", source: source)
}
