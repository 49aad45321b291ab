import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// An IPv4 or IPv6 socket address for the listener to bind, built from a numeric literal (no
/// name resolution: a listener's address must not depend on DNS).
struct SocketAddress {
    /// `sockaddr_in` or `sockaddr_in6`, as bytes.
    let storage: [UInt8]
    /// Whether it is IPv6.
    let isIPv6: Bool

    /// Parses `address` (`127.0.0.1`, `0.0.0.0`, `::1`, `::`) with `port` (0...65535); `nil` when
    /// either is invalid.
    init?(address: String, port: Int) {
        guard (0...65535).contains(port) else { return nil }
        var v4 = in_addr()
        if inet_pton(AF_INET, address, &v4) == 1 {
            var socket = sockaddr_in()
            socket.sin_family = sa_family_t(AF_INET)
            socket.sin_port = in_port_t(UInt16(port).bigEndian)
            socket.sin_addr = v4
            storage = withUnsafeBytes(of: socket) { Array($0) }
            isIPv6 = false
            return
        }
        var v6 = in6_addr()
        if inet_pton(AF_INET6, address, &v6) == 1 {
            var socket = sockaddr_in6()
            socket.sin6_family = sa_family_t(AF_INET6)
            socket.sin6_port = in_port_t(UInt16(port).bigEndian)
            socket.sin6_addr = v6
            storage = withUnsafeBytes(of: socket) { Array($0) }
            isIPv6 = true
            return
        }
        return nil
    }
}
