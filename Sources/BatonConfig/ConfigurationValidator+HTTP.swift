/// The `http` object: every key of it is read here.
extension ConfigurationValidator {
    static let httpKeys = ["listen", "max_connections", "max_body"]

    /// Reads `http`; anything missing keeps its default (see ``HTTPConfiguration``).
    mutating func http(_ value: JSONValue?) -> HTTPConfiguration {
        var http = HTTPConfiguration()
        guard let value else { return http }
        guard case .object(let members) = value else {
            problem("http", "must be an object such as {\"listen\": \"127.0.0.1:9464\"}, not \(value.typeName)")
            return http
        }
        checkKeys(members, known: Self.httpKeys, path: "http", extra: [:])
        let fields = Dictionary(uniqueKeysWithValues: members.map { ($0.key, $0.value) })
        if let text = string(fields["listen"], "http.listen") {
            switch HTTPConfiguration.parseListen(text) {
            case .success(let listen): http.listen = listen
            case .failure(let failure): problem("http.listen", failure.description)
            }
        }
        if let count = integer(fields["max_connections"], "http.max_connections", range: 4...10_000) {
            http.maxConnections = count
        }
        if let bytes = integer(fields["max_body"], "http.max_body", range: 1024...1_048_576) {
            http.maxBody = bytes
        }
        return http
    }
}
