/// How refresh tokens (and the local spool of rotated ones) are protected at rest: decided once,
/// from `BATON_ENCRYPTION_KEYS` or the configuration's `encryption`, and handed to the token store.
public enum SecretEncryption: Sendable, CustomStringConvertible {
    /// Stored in plain text (`"encryption": "none"`, written explicitly; logged as a warning at
    /// every start). Encrypted secrets already stored still cannot be read without their key.
    case none
    /// Sealed with AES-256-GCM under the keyring's primary key; every key of the ring opens.
    case keyring(Keyring)

    /// The keyring, when there is one.
    public var keyring: Keyring? {
        if case .keyring(let keyring) = self { return keyring }
        return nil
    }

    /// Kids only, never key material: `none` or `Keyring(k1, k0; primary k1)`.
    public var description: String {
        switch self {
        case .none: return "none"
        case .keyring(let keyring): return keyring.description
        }
    }
}
