import BatonTokens
import Foundation

/// A condition of a service that webhooks report, and the event that announces it.
enum AlertCondition: String, Sendable, CaseIterable {
    /// Healthy; reaching it from any other condition is the `recovered` event.
    case ok
    /// The provider rejected the refresh token (`invalid_grant`).
    case needsReauth = "needs_reauth"
    /// No refresh token stored.
    case needsSeed = "needs_seed"
    /// ``AlertOptions/refreshFailingAfter`` consecutive failures, or the token inside its refresh
    /// buffer while refreshes fail.
    case refreshFailing = "refresh_failing"
    /// The stored token was issued to another client than this configuration's.
    case configMismatch = "config_mismatch"
    /// The stored token is sealed under a key this keyring lacks.
    case unknownKey = "unknown_key"
    /// The stored token does not open with its key, or its envelope is damaged.
    case unreadableSecret = "unreadable_secret"

    /// The webhook's `event` field.
    var event: String { self == .ok ? "recovered" : rawValue }

    /// The webhook's `status` field: the service's status in Baton's vocabulary.
    var status: String { self == .refreshFailing ? "refreshing_failed" : rawValue }

    /// The token-record status that must still hold when the condition is recorded (`nil`: none):
    /// a failure seen just before another replica's success, or the reverse, is dropped.
    var requiredRecordStatus: TokenRecord.Status? {
        switch self {
        case .ok: return .ok
        case .refreshFailing: return .refreshingFailed
        case .needsReauth: return .needsReauth
        default: return nil
        }
    }

    init(_ reason: BlockedReason) {
        switch reason {
        case .needsSeed: self = .needsSeed
        case .needsReauth: self = .needsReauth
        case .configMismatch: self = .configMismatch
        case .unknownKey: self = .unknownKey
        case .unreadableSecret: self = .unreadableSecret
        }
    }
}

/// The JSON body of one webhook. Holds no token, secret or key: only names, numbers, and the error
/// code and description Baton records (which never quote a secret).
///
/// ```json
/// {"at":1764000000000,"detail":"server_error: upstream unavailable","event":"refresh_failing",
///  "id":"crm:2:1764000000000","previous":"ok","replica":"host:1234","service":"crm",
///  "status":"refreshing_failed","version":41}
/// ```
struct AlertEvent: Sendable {
    var condition: AlertCondition
    var service: String
    var version: Int64?
    /// Server-clock milliseconds when the condition was observed.
    var at: Int64
    var replica: String
    var detail: String?

    /// The body with the placeholders ``AlertScripts/transition`` fills in: `@@SEQ@@` (in `id`) and
    /// `@@PREVIOUS@@` (the condition this one replaces).
    var template: String {
        var object: [String: Any] = [
            "event": condition.event, "service": service, "status": condition.status, "at": at, "replica": replica,
            "id": "\(service):@@SEQ@@:\(at)", "previous": "@@PREVIOUS@@",
            "version": version.map { $0 as Any } ?? NSNull(), "detail": NSNull(),
        ]
        // `detail` sorts before `id`: a description that held a placeholder would take its number.
        if var text = detail {
            while text.contains("@@") { text = text.replacingOccurrences(of: "@@", with: "@") }
            object["detail"] = text
        }
        // Only JSON values go in, so serialising cannot fail.
        let data = try! JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .withoutEscapingSlashes])
        return String(decoding: data, as: UTF8.self)
    }
}
