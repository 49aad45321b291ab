import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// Finds a TCP port on 127.0.0.1 that nothing listens on (bind to port 0, read it, release it).
public func freeLoopbackPort() throws -> Int {
    guard let port = bindLoopback(port: 0) else { throw POSIXError(.EADDRINUSE) }
    return port
}

/// Finds a free TCP port P on 127.0.0.1 such that P + `offset` is a valid port and free too: a
/// cluster node listens on P and on its cluster bus, P + 10000.
func freeLoopbackPort(alsoFreeAt offset: Int) throws -> Int {
    // The kernel hands out ports up to 60999, so most candidates leave room for the offset.
    for _ in 0..<50 {
        let port = try freeLoopbackPort()
        if port + offset <= 65535 && bindLoopback(port: port + offset) != nil { return port }
    }
    throw POSIXError(.EADDRINUSE)
}

/// Binds a socket to 127.0.0.1:`port` (0: any) and releases it.
/// - Returns: the port bound, or `nil` when it is taken.
private func bindLoopback(port: Int) -> Int? {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    guard fd >= 0 else { return nil }
    defer { close(fd) }
    var address = loopbackAddress(port: port)
    var length = socklen_t(MemoryLayout<sockaddr_in>.size)
    let bound = withUnsafeMutablePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
            bind(fd, $0, length) == 0 && getsockname(fd, $0, &length) == 0
        }
    }
    return bound ? Int(UInt16(bigEndian: address.sin_port)) : nil
}

/// The IPv4 socket address 127.0.0.1:`port`.
func loopbackAddress(port: Int) -> sockaddr_in {
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_port = in_port_t(UInt16(port).bigEndian)
    address.sin_addr.s_addr = inet_addr("127.0.0.1")
    return address
}
