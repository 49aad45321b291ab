import BatonSupport

/// The `http` object: every key of it is read here.
extension ConfigurationValidator {
    static let httpKeys = ["listen", "max_connections", "max_connections_per_ip", "max_body", "api_keys"]
    static let apiKeyKeys = ["name", "key_env", "key_file", "services"]

    static let plainHTTPTokenAPIWarning = """
        http.api_keys is set and http.listen is not a loopback address: the token API sends tokens and keys \
        in clear text. Put a TLS-terminating proxy in front of it (or listen on 127.0.0.1 and let the proxy connect)
        """

    /// Reads `http`; anything missing keeps its default (see ``HTTPConfiguration``).
    mutating func http(_ value: JSONValue?, warnings: inout [String]) -> HTTPConfiguration {
        var http = HTTPConfiguration()
        guard let value else { return http }
        guard case .object(let members) = value else {
            problem("http", "must be an object such as {\"listen\": \"127.0.0.1:9464\"}, not \(value.typeName)")
            return http
        }
        let fields = checkedFields(members, known: Self.httpKeys, path: "http")
        if let text = string(fields["listen"], "http.listen") {
            switch HTTPConfiguration.parseListen(text) {
            case .success(let listen): http.listen = listen
            case .failure(let failure): problem("http.listen", failure.description)
            }
        }
        if let count = integer(fields["max_connections"], "http.max_connections", range: 4...10_000) {
            http.maxConnections = count
        }
        if let count = integer(fields["max_connections_per_ip"], "http.max_connections_per_ip", range: 1...10_000) {
            http.maxConnectionsPerIP = count
        }
        if let bytes = integer(fields["max_body"], "http.max_body", range: 1024...1_048_576) {
            http.maxBody = bytes
        }
        http.apiKeys = apiKeys(fields["api_keys"])
        if !http.apiKeys.isEmpty {
            if http.listen == nil {
                problem("http.api_keys", "the token API needs the listener, and http.listen is \"off\": set an address")
            } else if let host = http.listen?.host, host != "127.0.0.1", host != "::1" {
                warnings.append(Self.plainHTTPTokenAPIWarning)
            }
        }
        return http
    }

    /// `http.api_keys`: a list of `{"name", "key_env" | "key_file", "services"}`. No message here
    /// ever holds a key: only positions, names, variable names and paths.
    mutating func apiKeys(_ value: JSONValue?) -> [APIKey] {
        guard let value, value != .null else { return [] }
        guard case .array(let entries) = value else {
            problem(
                "http.api_keys",
                "must be a list such as [{\"name\": \"n8n\", \"key_file\": \"n8n-api-key\", \"services\": [\"my-api\"]}], not \(value.typeName)"
            )
            return []
        }
        var keys: [APIKey] = []
        var names: Set<String> = []
        for (index, entry) in entries.enumerated() {
            let path = "http.api_keys[\(index)]"
            guard let key = apiKey(entry, path: path, position: index + 1) else { continue }
            if !names.insert(key.name).inserted {
                problem("\(path).name", "'\(key.name)' names another key too: give each key its own name")
            } else if let twin = keys.first(where: { $0.key == key.key }) {
                problem(path, "the same key as '\(twin.name)': give each client its own key")
            } else {
                keys.append(key)
            }
        }
        return keys
    }

    private mutating func apiKey(_ value: JSONValue, path: String, position: Int) -> APIKey? {
        guard case .object(let members) = value else {
            problem(
                path, "must be an object {\"name\", \"key_env\" or \"key_file\", \"services\"}, not \(value.typeName)")
            return nil
        }
        let fields = checkedFields(
            members, known: Self.apiKeyKeys, path: path,
            extra: ["key": "an inline key is refused (this file gets copied around): use key_env or key_file"])
        let name = string(fields["name"], "\(path).name") ?? "key-\(position)"
        let nameProblem = KeyNameRules.nameProblem(name, kind: "key name")
        if let nameProblem { problem("\(path).name", nameProblem) }
        var (present, key) = secretSource(fields, prefix: "key", path: path)
        if !present {
            problem(path, "no key: set key_env (an environment variable) or key_file (a file of mode 0600)")
        }
        if let text = key?.reveal(), !Self.isAcceptableAPIKey(text) {
            problem(
                path,
                "the key must be at least \(APIKey.minimumLength) printable ASCII characters without spaces: make one with `openssl rand -hex 32`"
            )
            key = nil
        }
        let scope = apiKeyScope(fields["services"], path: "\(path).services")
        guard let key, let scope, nameProblem == nil else { return nil }
        return APIKey(name: name, key: key, scope: scope)
    }

    private mutating func apiKeyScope(_ value: JSONValue?, path: String) -> APIKey.Scope? {
        guard case .array(let items)? = value, !items.isEmpty else {
            problem(path, "must be a non-empty list of service names, or [\"*\"] for every service")
            return nil
        }
        var names: Set<String> = []
        for (index, item) in items.enumerated() {
            guard let name = string(item, "\(path)[\(index)]") else { continue }
            if name == "*" { return .all }
            if let problem = Self.serviceNameProblem(name) {
                self.problem("\(path)[\(index)]", problem)
            } else {
                names.insert(name)
            }
        }
        return names.isEmpty ? nil : .services(names)
    }

    /// Long enough to resist guessing, and sendable in an `Authorization` header as is.
    private static func isAcceptableAPIKey(_ key: String) -> Bool {
        key.utf8.count >= APIKey.minimumLength && key.utf8.allSatisfy { (0x21...0x7e).contains($0) }
    }
}
