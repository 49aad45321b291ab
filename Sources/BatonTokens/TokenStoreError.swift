/// Problems reading or writing token records, with what to do next. Never contains a secret.
public enum TokenStoreError: Error, Sendable, CustomStringConvertible {
    /// `prefix:{svc}:token` holds something that is not a token record.
    case corruptRecord(service: String, reason: String)
    /// `prefix:{svc}:secret` holds something that is not a secret envelope this version reads.
    case corruptSecret(service: String, reason: String)
    /// `prefix:{svc}:secret` is sealed under a key this keyring lacks.
    case unknownKey(service: String, kid: String)
    /// `prefix:{svc}:secret` is sealed under a key this keyring has, and it does not open: the
    /// key under that kid differs, or the envelope was changed or copied from another place.
    case undecryptable(service: String, kid: String)

    public var description: String {
        switch self {
        case .corruptRecord(let service, let reason):
            return
                "the token record of '\(service)' is not valid (\(reason)): delete the key and let the coordinator refresh, or re-seed"
        case .corruptSecret(let service, let reason):
            return
                "corrupt secret: the stored refresh token of '\(service)' is not readable (\(reason)): re-seed it with `baton seed \(service) --refresh-token-file PATH`"
        case .unknownKey(let service, let kid):
            return
                "the stored refresh token of '\(service)' is encrypted with key '\(kid)', which this keyring lacks: add that key (BATON_ENCRYPTION_KEYS or encryption.keys_file) on every replica; it is left untouched"
        case .undecryptable(let service, let kid):
            return
                "the stored refresh token of '\(service)' does not decrypt with key '\(kid)': that kid names another key here, or the envelope was changed or copied from another service; it is left untouched (fix the keyring, or re-seed)"
        }
    }
}
