/// How to speak TLS to Redis: the `tls_*` query parameters of a `rediss://` (or TLS Sentinel or
/// Cluster) URL.
///
/// Verification of the server's certificate chain and of its name is on unless ``insecure``;
/// ``RedisEndpoint`` accepts `tls_insecure=true` only for loopback hosts.
public struct RedisTLSOptions: Sendable, Hashable {
    /// `tls_ca_file`: a PEM file of the CA certificates to trust. With neither this nor
    /// ``caDirectory``, the system store (`/etc/ssl/certs`) is used.
    public var caFile: String?
    /// `tls_ca_dir`: a folder of hashed CA certificates (`openssl rehash`).
    public var caDirectory: String?
    /// `tls_cert_file`: the client certificate (PEM, chain allowed) for mutual TLS.
    public var certificateFile: String?
    /// `tls_key_file`: the client certificate's private key (PEM).
    public var keyFile: String?
    /// `tls_server_name`: the name sent as SNI and verified against the certificate. Default: the host.
    public var serverName: String?
    /// `tls_insecure=true`: no verification at all (loopback hosts only).
    public var insecure: Bool

    /// Creates options; with no arguments: the system CA store, full verification.
    public init(
        caFile: String? = nil, caDirectory: String? = nil, certificateFile: String? = nil, keyFile: String? = nil,
        serverName: String? = nil, insecure: Bool = false
    ) {
        self.caFile = caFile
        self.caDirectory = caDirectory
        self.certificateFile = certificateFile
        self.keyFile = keyFile
        self.serverName = serverName
        self.insecure = insecure
    }

    /// The URL query parameter names, in the order the README lists them.
    public static let parameterNames = [
        "tls_ca_file", "tls_ca_dir", "tls_cert_file", "tls_key_file", "tls_server_name", "tls_insecure",
    ]
}
