import Foundation

/// Certificates for TLS tests, made with the `openssl` command in a temporary folder: a test CA,
/// an unrelated second CA, server certificates (valid, for the wrong name, expired) and a client
/// certificate. Keys are EC P-256 and unencrypted; properties are file paths (PEM).
///
/// ```swift
/// let certificates = try TestCertificates.shared()
/// let server = try RedisServerProcess.start(tls: .init(serverCertificate: .expired))
/// // a client given certificates.caCertificate must refuse `server`
/// ```
public struct TestCertificates: Sendable {
    /// A certificate and its private key.
    public struct Identity: Sendable {
        /// The certificate (PEM file path).
        public let certificate: String
        /// Its private key (PEM file path, unencrypted).
        public let privateKey: String
    }

    /// The folder holding every file.
    public let directory: URL
    /// The test CA's certificate: the one to trust.
    public let caCertificate: String
    /// The test CA's private key, to sign more certificates with `openssl` if a test needs one.
    public let caPrivateKey: String
    /// A second CA, unrelated to the first: trusting it alone must make every server below fail.
    public let otherCACertificate: String
    /// Signed by the test CA for `DNS:localhost` and `IP:127.0.0.1`; valid for ten years.
    public let server: Identity
    /// Signed by the test CA for `DNS:wrong.example` only (CN too): host name checks must fail.
    public let wrongNameServer: Identity
    /// Signed by the test CA for `DNS:localhost` and `IP:127.0.0.1`, valid only from 2020-01-01 to
    /// 2020-01-02: `openssl verify` says "certificate has expired".
    public let expiredServer: Identity
    /// Signed by the test CA for client authentication (CN `baton-test-client`): for mutual TLS.
    public let client: Identity

    /// The certificates of this test process, made on first use (well under a second) and removed
    /// when the process exits.
    /// - Throws: ``TopologyError`` with openssl's output when `openssl` is missing or fails.
    public static func shared() throws -> TestCertificates {
        try cached.get()
    }

    private static let cached: Result<TestCertificates, any Error> = Result {
        let directory = FileManager.default.temporaryDirectory
            .appendingPathComponent("baton-certificates-\(UUID().uuidString.prefix(8))")
        do {
            let certificates = try generate(in: directory)
            // Runs after every test; by then `cached` holds the certificates.
            atexit {
                if let directory = try? TestCertificates.cached.get().directory {
                    try? FileManager.default.removeItem(at: directory)
                }
            }
            return certificates
        } catch {
            try? FileManager.default.removeItem(at: directory)
            throw error
        }
    }

    /// Makes a fresh set of certificates in `directory` (created if needed).
    /// - Throws: ``TopologyError`` with openssl's output when `openssl` is missing or fails.
    public static func generate(in directory: URL) throws -> TestCertificates {
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let openssl = OpenSSLRunner(directory: directory)
        try openssl.writeConfiguration()
        let ca = try openssl.makeAuthority("ca", commonName: "Baton Test CA")
        let other = try openssl.makeAuthority("other-ca", commonName: "Baton Unrelated CA")
        let validity = ["-days", "3650"]
        return TestCertificates(
            directory: directory, caCertificate: ca.certificate, caPrivateKey: ca.privateKey,
            otherCACertificate: other.certificate,
            server: try openssl.sign(
                "server", commonName: "localhost", extensions: "server_localhost", validity: validity, by: ca),
            wrongNameServer: try openssl.sign(
                "wrong-name-server", commonName: "wrong.example", extensions: "server_wrong_name",
                validity: validity, by: ca),
            expiredServer: try openssl.sign(
                "expired-server", commonName: "localhost", extensions: "server_localhost",
                validity: ["-startdate", "20200101000000Z", "-enddate", "20200102000000Z"], by: ca),
            client: try openssl.sign(
                "client", commonName: "baton-test-client", extensions: "client", validity: validity, by: ca))
    }
}

/// Runs `openssl` in one folder with one configuration file (`openssl.cnf`), so nothing depends on
/// the system's configuration.
private struct OpenSSLRunner {
    let directory: URL

    private func path(_ name: String) -> String { directory.appendingPathComponent(name).path }

    /// Certificates are signed with `openssl ca`, the one OpenSSL 3.0 command that accepts explicit
    /// start and end dates (`x509 -req` only has `-days`): an expired certificate needs them.
    private var configuration: String {
        """
        [ req ]
        distinguished_name = request_name
        prompt = no
        [ request_name ]
        CN = unused
        [ authority ]
        basicConstraints = critical, CA:TRUE
        keyUsage = critical, keyCertSign, cRLSign
        subjectKeyIdentifier = hash
        [ ca ]
        default_ca = test_ca
        [ test_ca ]
        database = \(path("index.txt"))
        new_certs_dir = \(path("issued"))
        serial = \(path("serial"))
        default_md = sha256
        policy = any_name
        unique_subject = no
        copy_extensions = none
        [ any_name ]
        commonName = supplied
        [ server_localhost ]
        basicConstraints = critical, CA:FALSE
        subjectAltName = DNS:localhost, IP:127.0.0.1
        extendedKeyUsage = serverAuth
        [ server_wrong_name ]
        basicConstraints = critical, CA:FALSE
        subjectAltName = DNS:wrong.example
        extendedKeyUsage = serverAuth
        [ client ]
        basicConstraints = critical, CA:FALSE
        extendedKeyUsage = clientAuth

        """
    }

    func writeConfiguration() throws {
        try configuration.write(toFile: path("openssl.cnf"), atomically: true, encoding: .utf8)
        try "".write(toFile: path("index.txt"), atomically: true, encoding: .utf8)
        try "01\n".write(toFile: path("serial"), atomically: true, encoding: .utf8)
        try FileManager.default.createDirectory(atPath: path("issued"), withIntermediateDirectories: true)
    }

    /// A self-signed CA certificate `NAME.crt` with its key `NAME.key`.
    func makeAuthority(_ name: String, commonName: String) throws -> TestCertificates.Identity {
        let identity = TestCertificates.Identity(certificate: path("\(name).crt"), privateKey: path("\(name).key"))
        try run([
            "req", "-config", path("openssl.cnf"), "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
            "-nodes", "-keyout", identity.privateKey, "-out", identity.certificate, "-days", "3650",
            "-subj", "/CN=\(commonName)", "-extensions", "authority",
        ])
        return identity
    }

    /// A key and a certificate for `commonName` signed by `authority`, with the extensions of the
    /// configuration's section `extensions` and `validity` (`openssl ca` options).
    func sign(
        _ name: String, commonName: String, extensions: String, validity: [String],
        by authority: TestCertificates.Identity
    ) throws -> TestCertificates.Identity {
        let identity = TestCertificates.Identity(certificate: path("\(name).crt"), privateKey: path("\(name).key"))
        let request = path("\(name).csr")
        try run([
            "req", "-config", path("openssl.cnf"), "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
            "-nodes", "-keyout", identity.privateKey, "-out", request, "-subj", "/CN=\(commonName)",
        ])
        try run(
            [
                "ca", "-batch", "-config", path("openssl.cnf"), "-cert", authority.certificate, "-keyfile",
                authority.privateKey, "-in", request, "-out", identity.certificate, "-extensions", extensions,
                "-notext",
            ] + validity)
        return identity
    }

    private func run(_ arguments: [String]) throws {
        let result = try InstalledProgram.run("openssl", arguments)
        guard result.succeeded else {
            throw TopologyError(
                "`openssl \(arguments.joined(separator: " "))` failed (exit \(result.status)):\n\(result.output)")
        }
    }
}
