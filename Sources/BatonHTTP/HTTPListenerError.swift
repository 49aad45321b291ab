/// Why an ``HTTPListener`` could not start.
public struct HTTPListenerError: Error, Sendable, CustomStringConvertible {
    /// What went wrong, with what to do about it.
    public enum Reason: Sendable, Equatable {
        /// The address is not an IPv4 or bracket-free IPv6 literal, or the port is out of range.
        case invalidAddress
        /// Another process listens there (`EADDRINUSE`).
        case addressInUse
        /// Binding needs privileges this process lacks (`EACCES`: a port below 1024).
        case permissionDenied
        /// The address is not one of this machine's (`EADDRNOTAVAIL`).
        case addressNotAvailable
        /// Anything else libmicrohttpd reported: its message and `errno`.
        case other(message: String, errno: Int32)
    }

    /// The address as given (`127.0.0.1`, `::1`).
    public let address: String
    /// The port as given (0 for an ephemeral one).
    public let port: Int
    /// The reason.
    public let reason: Reason

    /// Creates an error.
    public init(address: String, port: Int, reason: Reason) {
        self.address = address
        self.port = port
        self.reason = reason
    }

    /// `host:port`, with brackets around an IPv6 address.
    var endpoint: String { address.contains(":") ? "[\(address)]:\(port)" : "\(address):\(port)" }

    public var description: String {
        switch reason {
        case .invalidAddress:
            return
                "cannot listen on \(endpoint): not an IP address and port (use 127.0.0.1:9464, [::1]:9464 or :9464)"
        case .addressInUse:
            return
                "cannot listen on \(endpoint): address already in use: choose another http.listen, or stop the other process"
        case .permissionDenied:
            return "cannot listen on \(endpoint): permission denied: use a port above 1023"
        case .addressNotAvailable:
            return "cannot listen on \(endpoint): this machine has no such address: choose another http.listen"
        case .other(let message, let errno):
            return
                "cannot listen on \(endpoint): \(message.isEmpty ? "libmicrohttpd failed to start" : message) (errno \(errno))"
        }
    }
}
