/// One entry of `http.api_keys`: a bearer key of the token API and the services it may read.
///
/// ```json
/// {"name": "n8n", "key_file": "/etc/baton/n8n-api-key", "services": ["crm", "mail"]}
/// {"name": "ops", "key_env": "BATON_OPS_API_KEY", "services": ["*"]}
/// ```
public struct APIKey: Sendable, Equatable {
    /// Which services a key may read.
    public enum Scope: Sendable, Equatable {
        /// `["*"]`: every service.
        case all
        /// The services named.
        case services(Set<String>)

        /// Whether `service` is in the scope.
        public func allows(_ service: String) -> Bool {
            switch self {
            case .all: return true
            case .services(let names): return names.contains(service)
            }
        }
    }

    /// The shortest key accepted, in characters: shorter ones can be guessed.
    public static let minimumLength = 16

    /// The key's name, for logs (never the key itself). Default: `key-N`, N its 1-based position.
    public var name: String
    /// The key, from `key_env` (an environment variable) or `key_file` (a file of mode 0600).
    public var key: Secret
    /// `services`: the services the key may read.
    public var scope: Scope

    /// Creates an entry.
    public init(name: String, key: Secret, scope: Scope) {
        self.name = name
        self.key = key
        self.scope = scope
    }
}
