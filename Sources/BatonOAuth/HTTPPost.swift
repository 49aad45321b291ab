import BatonSupport
internal import CCurl
import Foundation

/// One HTTP POST (or, without a body, GET) through libcurl's easy interface, with a capped
/// response body.
///
/// **Ownership:** the `CURL*` handle belongs to this object alone and is freed in `deinit`; one
/// request per object, on the thread that calls ``perform()``. TLS verification is always on,
/// redirects are not followed (a token endpoint that redirects is misconfigured), and only
/// http/https are allowed. Used by the token-endpoint client and by alert webhooks (public for
/// those, in BatonCoordinator): the one libcurl wrapper in Baton.
public final class HTTPPost {
    /// The answer: status, headers (names lower-cased) and the body up to the cap.
    public struct Response: Sendable {
        /// The HTTP status code.
        public let status: Int
        /// The headers of the final response, names lower-cased.
        public let headers: [String: String]
        /// The body, at most `maxBodyBytes`.
        public let body: [UInt8]
    }

    /// Why a POST did not get an answer.
    public enum Failure: Error {
        /// libcurl failed: timeouts, refused connections, DNS, TLS.
        case transport(code: Int32, message: String)
        /// The body passed the cap; the transfer was aborted.
        case bodyTooLarge(limit: Int)
        /// libcurl refused an option (out of memory, or a libcurl too old for it); nothing was sent.
        /// Names the option, never its value.
        case optionRejected(option: String, code: Int32, message: String)
    }

    private static let globalInit: Int32 = CCurl_global_init()

    private let handle: OpaquePointer
    private let collector = Collector()

    /// A new handle, or `nil` when libcurl cannot create one (out of memory).
    public init?() {
        _ = Self.globalInit
        guard let handle = CCurl_easy_init() else { return nil }
        self.handle = handle
    }

    deinit {
        CCurl_easy_cleanup(handle)
    }

    /// Sends `body` to `url` (a POST), or GETs `url` when `body` is `nil`, and collects the answer.
    public func perform(
        url: String, body: [UInt8]?, headers: [String], connectTimeout: Duration, totalTimeout: Duration,
        maxBodyBytes: Int
    ) throws(Failure) -> Response {
        let curl = handle
        collector.limit = maxBodyBytes
        var list: OpaquePointer?
        for header in headers { list = CCurl_slist_append(list, header) }
        defer { CCurl_slist_free_all(list) }

        let context = Unmanaged.passUnretained(collector).toOpaque()
        let code: Int32 = try (body ?? []).withUnsafeBufferPointer { bodyBuffer throws(Failure) in
            try CCurl_easy_setopt_string(curl, CCurlOption_URL, url).check("CURLOPT_URL")
            try CCurl_easy_setopt_string(curl, CCurlOption_PROTOCOLS_STR, "https,http").check("CURLOPT_PROTOCOLS_STR")
            // A fresh handle GETs; setting POST fields makes it a POST.
            if body != nil {
                try CCurl_easy_setopt_long(curl, CCurlOption_POSTFIELDSIZE, bodyBuffer.count).check(
                    "CURLOPT_POSTFIELDSIZE")
                let fields = UnsafeMutableRawPointer(mutating: bodyBuffer.baseAddress ?? UnsafePointer(bitPattern: 1)!)
                try CCurl_easy_setopt_pointer(curl, CCurlOption_POSTFIELDS, fields).check("CURLOPT_POSTFIELDS")
            }
            try CCurl_easy_setopt_list(curl, CCurlOption_HTTPHEADER, list).check("CURLOPT_HTTPHEADER")
            try CCurl_easy_setopt_long(curl, CCurlOption_CONNECTTIMEOUT_MS, Int(connectTimeout.milliseconds)).check(
                "CURLOPT_CONNECTTIMEOUT_MS")
            try CCurl_easy_setopt_long(curl, CCurlOption_TIMEOUT_MS, Int(totalTimeout.milliseconds)).check(
                "CURLOPT_TIMEOUT_MS")
            // Timeouts by alarm signals are unsafe in a multi-threaded process.
            try CCurl_easy_setopt_long(curl, CCurlOption_NOSIGNAL, 1).check("CURLOPT_NOSIGNAL")
            try CCurl_easy_setopt_long(curl, CCurlOption_SSL_VERIFYPEER, 1).check("CURLOPT_SSL_VERIFYPEER")
            try CCurl_easy_setopt_long(curl, CCurlOption_SSL_VERIFYHOST, 2).check("CURLOPT_SSL_VERIFYHOST")
            try CCurl_easy_setopt_long(curl, CCurlOption_FOLLOWLOCATION, 0).check("CURLOPT_FOLLOWLOCATION")
            try CCurl_easy_setopt_string(curl, CCurlOption_USERAGENT, "baton/1").check("CURLOPT_USERAGENT")
            try CCurl_easy_setopt_callback(curl, CCurlOption_WRITEFUNCTION, collectBody).check("CURLOPT_WRITEFUNCTION")
            try CCurl_easy_setopt_pointer(curl, CCurlOption_WRITEDATA, context).check("CURLOPT_WRITEDATA")
            try CCurl_easy_setopt_callback(curl, CCurlOption_HEADERFUNCTION, collectHeader).check(
                "CURLOPT_HEADERFUNCTION")
            try CCurl_easy_setopt_pointer(curl, CCurlOption_HEADERDATA, context).check("CURLOPT_HEADERDATA")
            return CCurl_easy_perform(curl)
        }
        if code == CCurlCode_WRITE_ERROR && collector.overflowed {
            throw .bodyTooLarge(limit: maxBodyBytes)
        }
        guard code == CCurlCode_OK else {
            throw .transport(code: code, message: String(cString: CCurl_easy_strerror(code)))
        }
        var status = 0
        try CCurl_easy_getinfo_long(curl, CCurlInfo_RESPONSE_CODE, &status).check("CURLINFO_RESPONSE_CODE")
        return Response(status: status, headers: collector.headers, body: collector.body)
    }
}

/// A plain HTTP GET for operators' tools (`baton health`), over the same libcurl wrapper as the
/// token endpoint's POST: TLS verified, no redirects, http/https only, the body capped.
public enum HTTPGet {
    /// The answer.
    public struct Response: Sendable {
        /// The status code.
        public let status: Int
        /// The body, at most the cap given.
        public let body: [UInt8]
    }

    /// Why no answer came.
    public struct Failure: Error, Sendable, CustomStringConvertible {
        /// libcurl's explanation (refused, timed out, ...), never a header or a body.
        public let message: String
        public var description: String { message }
    }

    /// GETs `url`, waiting at most `timeout` in all (a third of it to connect).
    public static func fetch(url: String, timeout: Duration, maxBodyBytes: Int = 64 * 1024) throws(Failure) -> Response
    {
        guard let request = HTTPPost() else { throw Failure(message: "libcurl could not make a handle") }
        do {
            let answer = try request.perform(
                url: url, body: nil, headers: [], connectTimeout: timeout / 3, totalTimeout: timeout,
                maxBodyBytes: maxBodyBytes)
            return Response(status: answer.status, body: answer.body)
        } catch {
            switch error {
            case .transport(_, let message): throw Failure(message: message)
            case .bodyTooLarge(let limit): throw Failure(message: "the answer is longer than \(limit) bytes")
            case .optionRejected(let option, _, let message): throw Failure(message: "\(option): \(message)")
            }
        }
    }
}

extension Int32 {
    /// Turns a libcurl result code (`CURLcode`) from `curl_easy_setopt`/`getinfo` into a typed
    /// error naming the option, as corelibs-foundation's `EasyHandle` does with `.asError()`.
    fileprivate func check(_ option: String) throws(HTTPPost.Failure) {
        guard self != CCurlCode_OK else { return }
        throw .optionRejected(option: option, code: self, message: String(cString: CCurl_easy_strerror(self)))
    }
}

/// Receives libcurl's callbacks for one transfer.
private final class Collector {
    var limit = 1 << 20
    var body: [UInt8] = []
    var headers: [String: String] = [:]
    var overflowed = false
}

private func collectBody(
    _ data: UnsafeMutablePointer<CChar>?, _ size: Int, _ count: Int, _ context: UnsafeMutableRawPointer?
) -> Int {
    guard let data, let context else { return 0 }
    let collector = Unmanaged<Collector>.fromOpaque(context).takeUnretainedValue()
    let length = size * count
    if collector.body.count + length > collector.limit {
        collector.overflowed = true
        let room = max(0, collector.limit - collector.body.count)
        collector.body.append(contentsOf: UnsafeRawBufferPointer(start: data, count: min(room, length)))
        return 0  // a short count makes libcurl abort with CURLE_WRITE_ERROR
    }
    collector.body.append(contentsOf: UnsafeRawBufferPointer(start: data, count: length))
    return length
}

private func collectHeader(
    _ data: UnsafeMutablePointer<CChar>?, _ size: Int, _ count: Int, _ context: UnsafeMutableRawPointer?
) -> Int {
    guard let data, let context else { return 0 }
    let collector = Unmanaged<Collector>.fromOpaque(context).takeUnretainedValue()
    let length = size * count
    let line = String(decoding: UnsafeRawBufferPointer(start: data, count: length), as: UTF8.self)
    if line.hasPrefix("HTTP/") {
        collector.headers = [:]  // a new response (after 100 Continue): start over
    } else if let colon = line.firstIndex(of: ":") {
        let name = line[..<colon].trimmingCharacters(in: .whitespaces).lowercased()
        collector.headers[name] = line[line.index(after: colon)...].trimmingCharacters(in: .whitespacesAndNewlines)
    }
    return length
}
