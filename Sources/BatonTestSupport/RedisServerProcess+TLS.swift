import Foundation

extension RedisServerProcess {
    /// How a TLS server is set up: which server certificate it presents (all from
    /// ``TestCertificates/shared()``) and whether it asks clients for theirs. It always trusts the
    /// test CA (`--tls-ca-cert-file`) for client certificates.
    public struct TLSSettings: Sendable, Equatable {
        /// The certificate the server presents.
        public enum ServerCertificate: Sendable, Equatable {
            /// ``TestCertificates/server``: valid for localhost and 127.0.0.1.
            case valid
            /// ``TestCertificates/wrongNameServer``: for `wrong.example` only.
            case wrongName
            /// ``TestCertificates/expiredServer``: expired in 2020.
            case expired
        }

        /// Whether clients must present a certificate signed by the test CA (`--tls-auth-clients`).
        public enum ClientAuthentication: String, Sendable, Equatable {
            /// `no`: any client without a certificate may connect.
            case none = "no"
            /// `yes`: mutual TLS; a client without a valid certificate is refused.
            case required = "yes"
            /// `optional`: a certificate is checked if the client sends one.
            case optional = "optional"
        }

        /// The certificate the server presents. Default: ``ServerCertificate/valid``.
        public var serverCertificate: ServerCertificate
        /// Whether clients need a certificate. Default: ``ClientAuthentication/none``.
        public var clientAuthentication: ClientAuthentication

        /// Settings for a TLS server.
        public init(serverCertificate: ServerCertificate = .valid, clientAuthentication: ClientAuthentication = .none) {
            self.serverCertificate = serverCertificate
            self.clientAuthentication = clientAuthentication
        }

        /// The server's identity among `certificates`.
        func identity(_ certificates: TestCertificates) -> TestCertificates.Identity {
            switch serverCertificate {
            case .valid: return certificates.server
            case .wrongName: return certificates.wrongNameServer
            case .expired: return certificates.expiredServer
            }
        }

        /// The `redis-server` TLS options (the TLS port aside).
        func serverArguments(_ certificates: TestCertificates) -> [String] {
            let identity = identity(certificates)
            return [
                "--tls-cert-file", identity.certificate, "--tls-key-file", identity.privateKey,
                "--tls-ca-cert-file", certificates.caCertificate, "--tls-auth-clients", clientAuthentication.rawValue,
            ]
        }
    }

    /// `redis-cli` options that reach this server, `nil` for a plain server: the test CA, the
    /// client certificate when the server asks for one, and `--insecure` instead of the CA when
    /// the server's certificate is expired.
    public var cliTLS: RedisCLI.TLS? {
        guard let tls, let certificates else { return nil }
        let client = tls.clientAuthentication == .none ? nil : certificates.client
        return RedisCLI.TLS(
            caCertificate: tls.serverCertificate == .expired ? nil : certificates.caCertificate,
            certificate: client?.certificate, privateKey: client?.privateKey,
            insecure: tls.serverCertificate == .expired)
    }

    /// Baton's URL for this server over TLS: `rediss://[CREDENTIALS@]127.0.0.1:PORT[/DB][?QUERY]`.
    /// - Parameters:
    ///   - parameters: the query; `nil` (default) for the one that reaches this server with a
    ///     valid certificate: the test CA, plus the client certificate and key when the server
    ///     asks for one.
    ///   - username: the ACL user, with `password`.
    ///   - password: the password (the URL carries it percent-encoded).
    ///   - database: the database number, `nil` (default) for none in the URL.
    public func tlsURL(
        _ parameters: TLSURLParameters? = nil, username: String? = nil, password: String? = nil, database: Int? = nil
    ) -> String {
        var query = parameters ?? TLSURLParameters()
        if parameters == nil, let certificates {
            query.caFile = certificates.caCertificate
            if tls?.clientAuthentication != TLSSettings.ClientAuthentication.none {
                query.certificateFile = certificates.client.certificate
                query.keyFile = certificates.client.privateKey
            }
        }
        let path = database.map { "/\($0)" } ?? ""
        let queryText = query.query.isEmpty ? "" : "?\(query.query)"
        return "rediss://\(userInfo(username: username, password: password))127.0.0.1:\(port)\(path)\(queryText)"
    }
}

/// The query parameters of Baton's `rediss://` URLs; each is left out when `nil` (or `false`).
///
/// ```swift
/// server.tlsURL(TLSURLParameters(caFile: certificates.otherCACertificate))
/// // rediss://127.0.0.1:PORT?tls_ca_file=/tmp/baton-certificates-1a2b3c4d/other-ca.crt
/// ```
public struct TLSURLParameters: Sendable, Equatable {
    /// `tls_ca_file`: the CA certificates to trust (a PEM file path).
    public var caFile: String?
    /// `tls_cert_file`: the client certificate, for mutual TLS.
    public var certificateFile: String?
    /// `tls_key_file`: the client certificate's private key.
    public var keyFile: String?
    /// `tls_server_name`: the name to expect in the server's certificate (and to send as SNI).
    public var serverName: String?
    /// `tls_insecure=true`: skip every certificate check.
    public var insecure: Bool

    /// Parameters; none is set unless given.
    public init(
        caFile: String? = nil, certificateFile: String? = nil, keyFile: String? = nil, serverName: String? = nil,
        insecure: Bool = false
    ) {
        self.caFile = caFile
        self.certificateFile = certificateFile
        self.keyFile = keyFile
        self.serverName = serverName
        self.insecure = insecure
    }

    /// `tls_ca_file=...&tls_cert_file=...&tls_key_file=...&tls_server_name=...&tls_insecure=true`,
    /// in that order, without the unset ones; values percent-encoded (a path keeps its slashes).
    public var query: String {
        let pairs: [(String, String?)] = [
            ("tls_ca_file", caFile), ("tls_cert_file", certificateFile), ("tls_key_file", keyFile),
            ("tls_server_name", serverName), ("tls_insecure", insecure ? "true" : nil),
        ]
        return pairs.compactMap { name, value in value.map { "\(name)=\(percentEncoded($0, keeping: "/"))" } }
            .joined(separator: "&")
    }
}
