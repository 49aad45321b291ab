import BatonRedis
import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// The benchmarks' baseline: a plain blocking TCP socket in this process that writes a request
/// and reads its reply, with nothing in between (no pool, no threads, no parser beyond finding
/// the reply's end). What Baton's client adds is measured against this.
final class RawRedisSocket {
    private let descriptor: Int32
    private var buffer = [UInt8](repeating: 0, count: 64 * 1024)

    /// Connects to a `redis://` endpoint (TCP) and logs in as the endpoint says.
    init(endpoint: RedisEndpoint) throws {
        guard case .tcp(let host, let port)? = endpoint.transport, endpoint.tls == nil else {
            throw BenchError("the raw baseline needs a plain redis://host:port URL, not \(endpoint.description)")
        }
        var hints = addrinfo()
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        var results: UnsafeMutablePointer<addrinfo>?
        guard getaddrinfo(host, String(port), &hints, &results) == 0, let info = results else {
            throw BenchError("cannot resolve \(host)")
        }
        defer { freeaddrinfo(results) }
        descriptor = socket(info.pointee.ai_family, Int32(SOCK_STREAM.rawValue), 0)
        guard descriptor >= 0, connect(descriptor, info.pointee.ai_addr, info.pointee.ai_addrlen) == 0 else {
            throw BenchError("cannot connect to \(endpoint.address): \(String(cString: strerror(errno)))")
        }
        var on: Int32 = 1
        setsockopt(descriptor, Int32(IPPROTO_TCP), TCP_NODELAY, &on, socklen_t(MemoryLayout<Int32>.size))
        if let password = endpoint.password {
            _ = try roundTrip(RedisCommand("AUTH", arguments: (endpoint.username.map { [$0] } ?? []) + [password]))
        }
        if endpoint.database != 0 { _ = try roundTrip(RedisCommand("SELECT", endpoint.database)) }
    }

    deinit {
        close(descriptor)
    }

    /// Sends `command` and reads until its reply is complete (a simple reply's line, or a bulk
    /// string's declared length). Returns the reply's size in bytes.
    @discardableResult
    func roundTrip(_ command: RedisCommand) throws -> Int {
        var request = "*\(command.arguments.count)\r\n".utf8.map { $0 }
        for argument in command.arguments {
            request += "$\(argument.count)\r\n".utf8
            request += argument
            request += [13, 10]
        }
        guard send(descriptor, request, request.count, Int32(MSG_NOSIGNAL)) == request.count else {
            throw BenchError("raw write failed: \(String(cString: strerror(errno)))")
        }
        var received = 0
        var needed: Int?
        while needed.map({ received < $0 }) ?? true {
            if received == buffer.count { buffer += [UInt8](repeating: 0, count: buffer.count) }
            let count = buffer.withUnsafeMutableBytes {
                recv(descriptor, $0.baseAddress! + received, $0.count - received, 0)
            }
            guard count > 0 else { throw BenchError("raw read failed") }
            received += count
            if needed == nil, let lineEnd = buffer[..<received].firstIndex(of: 10) {
                if buffer[0] == UInt8(ascii: "$"),
                    let length = Int(String(decoding: buffer[1..<(lineEnd - 1)], as: UTF8.self))
                {
                    needed = lineEnd + 1 + max(0, length) + (length >= 0 ? 2 : 0)
                } else {
                    needed = lineEnd + 1
                }
            }
        }
        return received
    }
}

/// A benchmark that cannot run as asked.
struct BenchError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}
