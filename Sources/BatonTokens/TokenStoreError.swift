/// Problems reading or writing token records, with what to do next. Never contains a secret.
public enum TokenStoreError: Error, Sendable, CustomStringConvertible {
    /// `prefix:{svc}:token` holds something that is not a token record.
    case corruptRecord(service: String, reason: String)
    /// `prefix:{svc}:secret` holds something that is not a secret envelope this version reads.
    case corruptSecret(service: String, reason: String)

    public var description: String {
        switch self {
        case .corruptRecord(let service, let reason):
            return
                "the token record of '\(service)' is not valid (\(reason)): delete the key and let the coordinator refresh, or re-seed"
        case .corruptSecret(let service, let reason):
            return
                "corrupt secret: the stored refresh token of '\(service)' is not readable (\(reason)): re-seed it with `baton seed \(service) --refresh-token-file PATH`"
        }
    }
}
