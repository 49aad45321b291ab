import BatonSupport
internal import CTLS
import Foundation

// @unchecked: an SSL_CTX is read-only once configured, and OpenSSL allows sharing it between threads.
/// A configured OpenSSL client context (`SSL_CTX`) for one set of ``RedisTLSOptions``: trusted
/// CAs, client certificate, TLS 1.2 or newer, verification mode.
///
/// Contexts are cached per options and per modification time of the files they read, so a
/// process makes one per configuration, and a certificate renewed on disk is picked up by the
/// next connection.
final class TLSContext: @unchecked Sendable {
    let context: OpaquePointer
    let options: RedisTLSOptions

    private struct CacheKey: Hashable {
        let options: RedisTLSOptions
        let fileDates: [Double?]
    }

    private static let cache = LockedBox([CacheKey: TLSContext]())

    /// The context for `options`, made on first use.
    /// - Throws: ``RedisError/tlsFailed(address:reason:)`` naming the file that could not be used.
    static func shared(for options: RedisTLSOptions, address: String) throws -> TLSContext {
        let files = [options.caFile, options.certificateFile, options.keyFile]
        let key = CacheKey(options: options, fileDates: files.map { $0.flatMap(modificationDate(of:)) })
        if let cached = cache.withLockedValue({ $0[key] }) { return cached }
        let made = try TLSContext(options: options, address: address)
        return cache.withLockedValue { cache in
            if cache.count > 16 { cache.removeAll() }  // options never change this often; bound it anyway
            if let raced = cache[key] { return raced }
            cache[key] = made
            return made
        }
    }

    private init(options: RedisTLSOptions, address: String) throws {
        Self.ignoreBrokenPipes()
        guard let context = SSL_CTX_new(TLS_client_method()) else {
            throw RedisError.tlsFailed(
                address: address, reason: "OpenSSL could not create a context: \(Self.lastError())")
        }
        self.context = context
        self.options = options
        func fail(_ what: String) -> RedisError {
            .tlsFailed(address: address, reason: "\(what): \(Self.lastError())")
        }
        ERR_clear_error()
        _ = CTLS_ctx_require_tls12(context)
        CTLS_ctx_set_nonblocking_modes(context)
        SSL_CTX_set_verify(context, options.insecure ? SSL_VERIFY_NONE : SSL_VERIFY_PEER, nil)
        if options.caFile != nil || options.caDirectory != nil {
            guard SSL_CTX_load_verify_locations(context, options.caFile, options.caDirectory) == 1 else {
                let which = [
                    options.caFile.map { "tls_ca_file '\($0)'" }, options.caDirectory.map { "tls_ca_dir '\($0)'" },
                ].compactMap { $0 }.joined(separator: " and ")
                throw fail("cannot load the CA certificates from \(which)")
            }
        } else if SSL_CTX_set_default_verify_paths(context) != 1 {
            throw fail("cannot load the system's CA certificates (set tls_ca_file)")
        }
        if let certificate = options.certificateFile {
            guard SSL_CTX_use_certificate_chain_file(context, certificate) == 1 else {
                throw fail("cannot load the client certificate tls_cert_file '\(certificate)'")
            }
            let key = options.keyFile ?? certificate
            guard SSL_CTX_use_PrivateKey_file(context, key, SSL_FILETYPE_PEM) == 1 else {
                throw fail("cannot load the client key tls_key_file '\(key)'")
            }
            guard SSL_CTX_check_private_key(context) == 1 else {
                throw fail("tls_key_file '\(key)' is not the key of tls_cert_file '\(certificate)'")
            }
        }
    }

    deinit {
        SSL_CTX_free(context)
    }

    /// The oldest error in this thread's OpenSSL error queue, as text, and the queue emptied.
    static func lastError() -> String {
        var text = ""
        while case let code = ERR_get_error(), code != 0 {
            if text.isEmpty {
                var buffer = [CChar](repeating: 0, count: 256)
                ERR_error_string_n(code, &buffer, buffer.count)
                text = String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
            }
        }
        return text.isEmpty ? "unknown OpenSSL error" : text
    }

    private static func modificationDate(of path: String) -> Double? {
        (try? FileManager.default.attributesOfItem(atPath: path)[.modificationDate] as? Date)?.timeIntervalSince1970
    }

    /// OpenSSL writes to the socket with `write(2)`, which raises SIGPIPE when the server has gone:
    /// that must be an error to handle, not the end of the process. Done once, and only when the
    /// process has not chosen a disposition of its own.
    private static let brokenPipesIgnored: Void = {
        var current = sigaction()
        if sigaction(SIGPIPE, nil, &current) == 0, current.__sigaction_handler.sa_handler == nil {
            signal(SIGPIPE, SIG_IGN)
        }
    }()

    private static func ignoreBrokenPipes() { _ = brokenPipesIgnored }
}
