import BatonOAuth
import BatonSupport
import Foundation

/// One signed POST of an event's body to the webhook URL, through the libcurl wrapper of
/// BatonOAuth (``BatonOAuth/HTTPPost``), on a thread of its own.
///
/// Signature (README "Webhooks"): `X-Baton-Timestamp: T` (Unix seconds at this attempt) and
/// `X-Baton-Signature: sha256=HEX`, HEX the HMAC-SHA256 under the shared secret of `T`, a dot, and
/// the body's exact bytes. A receiver recomputes it and refuses a timestamp more than 5 minutes off
/// (a replayed request).
struct AlertWebhook: Sendable {
    /// How an attempt ended.
    enum Result: Sendable, Equatable {
        /// A 2xx answer.
        case delivered(status: Int)
        /// Another status, or no answer (`status` nil; `reason` says why, never quoting the URL).
        case failed(status: Int?, reason: String)
    }

    let options: AlertOptions

    /// The headers of one attempt; `timestamp` is Unix seconds.
    func headers(body: [UInt8], id: String, event: String, timestamp: Int64) -> [String] {
        var headers = [
            "Content-Type: application/json", "Expect:", "X-Baton-Event: \(event)", "X-Baton-Delivery: \(id)",
            "X-Baton-Timestamp: \(timestamp)",
        ]
        if let secret = options.secret {
            let signed = Array("\(timestamp).".utf8) + body
            let signature = Digest.hmacSHA256Hex(key: Array(secret.reveal().utf8), message: signed)
            headers.append("X-Baton-Signature: sha256=\(signature)")
        }
        return headers
    }

    /// POSTs `body` once.
    func send(body: [UInt8], id: String, event: String) async -> Result {
        let headers = headers(
            body: body, id: id, event: event, timestamp: Int64(Date().timeIntervalSince1970.rounded(.down)))
        let url = options.webhookURL
        let timeout = options.timeout
        return await runOnDedicatedThread(named: "baton-webhook") { () -> Result in
            guard let request = HTTPPost() else {
                return .failed(status: nil, reason: "libcurl could not create a handle")
            }
            do throws(HTTPPost.Failure) {
                let response = try request.perform(
                    url: url, body: body, headers: headers, connectTimeout: timeout, totalTimeout: timeout,
                    maxBodyBytes: 64 << 10)
                if (200..<300).contains(response.status) { return .delivered(status: response.status) }
                return .failed(status: response.status, reason: "HTTP \(response.status)")
            } catch {
                switch error {
                case .transport(let code, let message): return .failed(status: nil, reason: "curl \(code): \(message)")
                case .bodyTooLarge(let limit): return .failed(status: nil, reason: "answer longer than \(limit) bytes")
                case .optionRejected(let option, let code, _):
                    return .failed(status: nil, reason: "libcurl refused \(option) (\(code))")
                }
            }
        }
    }
}
