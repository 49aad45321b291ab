import BatonSupport
import Foundation

/// Walks the document, collecting every problem instead of stopping at the first.
struct ConfigurationValidator {
    let environment: [String: String]
    let baseDirectory: String
    var problems: [ConfigurationError.Problem] = []

    static let topLevelKeys = [
        "redis_url", "prefix", "services", "lock_ttl", "lock_wait", "max_concurrent_refreshes",
        "forced_refresh_min_interval",
        "state_dir", "persist_replicas", "persist_timeout", "encryption", "redis_password_file",
        "alerts", "http",
    ]
    static let serviceKeys = [
        "token_url", "grant", "client_id", "client_secret_env", "client_secret_file", "client_secret_fallback_env",
        "client_secret_fallback_file", "auth_method", "scope",
        "audience", "resource", "extra_params", "refresh_buffer", "default_lifetime", "allow_insecure_http",
        "connect_timeout", "request_timeout", "forced_refresh_min_interval",
    ]

    init(environment: [String: String], baseDirectory: String) {
        self.environment = environment
        self.baseDirectory = baseDirectory
    }

    mutating func problem(_ path: String, _ message: String) {
        problems.append(.init(path: path, message: message))
    }

    mutating func configuration(_ document: JSONValue) -> BatonConfiguration? {
        guard case .object(let members) = document else {
            problem("", "the top level must be a JSON object, not \(document.typeName)")
            return nil
        }
        let fields = checkedFields(
            members, known: Self.topLevelKeys, path: "",
            extra: [
                "client_secret": "client_secret belongs inside a service, and must not be inline there either",
                "redis_password":
                    "an inline Redis password is refused: use redis_password_file or \(BatonDefaults.Environment.redisPassword)",
            ])

        let fileRedisURL = string(fields["redis_url"], "redis_url")
        var redisURL = fileRedisURL ?? BatonDefaults.redisURL
        if let override = BatonDefaults.Environment.value(BatonDefaults.Environment.redisURL, in: environment) {
            redisURL = override
        }
        if !BatonDefaults.redisURLSchemes.contains(where: { redisURL.hasPrefix($0) }) {
            // Not quoted: the value may hold a password (user-info or ?password=), and the
            // problem goes into `baton serve`'s config_reload_failed log line.
            problem("redis_url", "not a Redis URL: use \(BatonDefaults.redisURLForms)")
        }
        var prefix = string(fields["prefix"], "prefix") ?? BatonDefaults.tokenPrefix
        if let override = BatonDefaults.Environment.value(BatonDefaults.Environment.prefix, in: environment) {
            prefix = override
        }
        if KeyNameRules.prefixProblem(prefix) != nil {
            problem(
                "prefix",
                "'\(prefix)' is not a valid key prefix: use 1-64 letters, digits, '-', '_', '.' or ':' (no braces)")
        }
        let lockTTL = duration(fields["lock_ttl"], "lock_ttl") ?? .seconds(30)
        if lockTTL < .seconds(1) { problem("lock_ttl", "must be at least 1s so the lease can be renewed") }
        let lockWait = duration(fields["lock_wait"], "lock_wait") ?? .seconds(10)
        let maxConcurrent =
            integer(fields["max_concurrent_refreshes"], "max_concurrent_refreshes", range: 1...10_000) ?? 32
        let forcedInterval =
            duration(fields["forced_refresh_min_interval"], "forced_refresh_min_interval") ?? .seconds(5)

        var services: [ServiceConfiguration] = []
        switch fields["services"] {
        case .object(let entries)?:
            if entries.isEmpty {
                problem(
                    "services",
                    "no services: add at least one, e.g. \"my-api\": {\"token_url\": ..., \"client_id\": ...}")
            }
            for entry in entries {
                if let service = service(entry.key, entry.value, lockTTL: lockTTL, forcedDefault: forcedInterval) {
                    services.append(service)
                }
            }
        case nil:
            problem("services", "missing: an object of services keyed by name")
        case let other?:
            problem("services", "must be an object keyed by service name, not \(other.typeName)")
        }
        var stateDirectory = string(fields["state_dir"], "state_dir")
        if let directory = stateDirectory {
            if directory.isEmpty {
                problem("state_dir", "is empty: leave it out for the default, or name a folder on persistent storage")
            }
            stateDirectory = directory.hasPrefix("/") ? directory : baseDirectory + "/" + directory
        }
        let (persistReplicas, persistTimeout) = replicaAcknowledgement(fields, lockTTL: lockTTL)
        let encryption = encryption(fields["encryption"])
        let redisPassword = redisPassword(fields["redis_password_file"], redisURL: redisURL)
        var warnings: [String] = []
        if case .none = encryption { warnings.append(Self.plainTextWarning) }
        if let fileRedisURL, RedisURLCredentials.hasPassword(fileRedisURL) {
            warnings.append(Self.inlinePasswordWarning)
        }
        let alerts = alerts(fields["alerts"], warnings: &warnings)
        let http = http(fields["http"], warnings: &warnings)
        return BatonConfiguration(
            redisURL: redisURL, prefix: prefix, lockTTL: lockTTL, lockWait: lockWait,
            maxConcurrentRefreshes: maxConcurrent, forcedRefreshMinInterval: forcedInterval, services: services,
            stateDirectory: stateDirectory, persistReplicas: persistReplicas, persistTimeout: persistTimeout,
            encryption: encryption, redisPassword: redisPassword, warnings: warnings, alerts: alerts,
            http: http)
    }

    /// `persist_replicas` and `persist_timeout`. The lock stays held while a rotated token waits
    /// for replicas, so each `WAIT` must fit inside a lease. (A zero duration never parses: `WAIT`
    /// with 0 ms would wait forever.)
    mutating func replicaAcknowledgement(_ fields: [String: JSONValue], lockTTL: Duration) -> (Int, Duration) {
        let replicas = integer(fields["persist_replicas"], "persist_replicas", range: 0...100) ?? 0
        guard let timeout = duration(fields["persist_timeout"], "persist_timeout") else {
            return (replicas, .seconds(1))
        }
        if timeout >= lockTTL {
            problem(
                "persist_timeout",
                "\(timeout.configurationText) must be shorter than lock_ttl (\(lockTTL.configurationText)): the lock stays held while a rotated token waits for replicas"
            )
        }
        return (replicas, timeout)
    }

    mutating func service(_ name: String, _ value: JSONValue, lockTTL: Duration, forcedDefault: Duration)
        -> ServiceConfiguration?
    {
        let path = "services.\(name)"
        if let reason = Self.serviceNameProblem(name) { problem(path, reason) }
        guard case .object(let members) = value else {
            problem(path, "must be an object, not \(value.typeName)")
            return nil
        }
        let fields = checkedFields(
            members, known: Self.serviceKeys, path: path,
            extra: [
                "client_secret":
                    "an inline client_secret is refused (it would sit in a file that gets copied around): use client_secret_env (an environment variable) or client_secret_file"
            ])

        let grant: ServiceConfiguration.Grant
        switch string(fields["grant"], "\(path).grant") {
        case nil, "refresh_token"?: grant = .refreshToken
        case "client_credentials"?: grant = .clientCredentials
        case let other?:
            problem("\(path).grant", "'\(other)' is not supported: use refresh_token or client_credentials")
            grant = .refreshToken
        }
        let authMethod: ServiceConfiguration.AuthMethod
        switch string(fields["auth_method"], "\(path).auth_method") {
        case nil, "client_secret_post"?: authMethod = .clientSecretPost
        case "client_secret_basic"?: authMethod = .clientSecretBasic
        case let other?:
            problem("\(path).auth_method", "'\(other)' is not supported: use client_secret_post or client_secret_basic")
            authMethod = .clientSecretPost
        }
        let allowInsecure = boolean(fields["allow_insecure_http"], "\(path).allow_insecure_http") ?? false
        let tokenURL = url(fields["token_url"], "\(path).token_url", allowInsecure: allowInsecure)
        let clientID = string(fields["client_id"], "\(path).client_id")
        if fields["client_id"] == nil {
            problem("\(path).client_id", "missing: the OAuth client id issued by the provider")
        } else if clientID?.isEmpty == true {
            problem("\(path).client_id", "must not be empty")
        }
        let secret = clientSecret(fields, path: path, needed: grant == .clientCredentials)
        let primarySet = fields["client_secret_env"] != nil || fields["client_secret_file"] != nil
        let fallbackSecret = clientSecretFallback(fields, path: path, hasPrimary: primarySet)

        var extra: [(name: String, value: String)] = []
        for key in ["audience", "resource"] {
            if let value = string(fields[key], "\(path).\(key)") { extra.append((key, value)) }
        }
        switch fields["extra_params"] {
        case .object(let parameters)?:
            for parameter in parameters {
                guard case .string(let value) = parameter.value else {
                    problem(
                        "\(path).extra_params.\(parameter.key)", "must be a string, not \(parameter.value.typeName)")
                    continue
                }
                if ["grant_type", "refresh_token", "client_id", "client_secret", "code", "code_verifier"].contains(
                    parameter.key)
                {
                    problem("\(path).extra_params.\(parameter.key)", "Baton sets this parameter itself: remove it")
                    continue
                }
                extra.append((parameter.key, value))
            }
        case nil: break
        case let other?: problem("\(path).extra_params", "must be an object of string values, not \(other.typeName)")
        }

        let refreshBuffer =
            duration(fields["refresh_buffer"], "\(path).refresh_buffer") ?? ServiceConfiguration.defaultRefreshBuffer
        let defaultLifetime = duration(fields["default_lifetime"], "\(path).default_lifetime") ?? .seconds(3600)
        let requestTimeout =
            duration(fields["request_timeout"], "\(path).request_timeout") ?? min(.seconds(15), lockTTL / 2)
        let connectTimeout =
            duration(fields["connect_timeout"], "\(path).connect_timeout") ?? min(.seconds(5), requestTimeout)
        if requestTimeout >= lockTTL {
            problem(
                "\(path).request_timeout",
                "\(requestTimeout.configurationText) must be shorter than lock_ttl (\(lockTTL.configurationText)): a provider call must end well within one lease"
            )
        }
        if connectTimeout > requestTimeout {
            problem("\(path).connect_timeout", "must not be longer than request_timeout")
        }
        let forced =
            duration(fields["forced_refresh_min_interval"], "\(path).forced_refresh_min_interval") ?? forcedDefault

        guard let tokenURL, let clientID else { return nil }
        return ServiceConfiguration(
            name: name, tokenURL: tokenURL, grant: grant, clientID: clientID, clientSecret: secret,
            clientSecretFallback: fallbackSecret,
            authMethod: authMethod,
            scope: string(fields["scope"], "\(path).scope"), extraParameters: extra.sorted { $0.name < $1.name },
            refreshBuffer: refreshBuffer, defaultLifetime: defaultLifetime, allowInsecureHTTP: allowInsecure,
            connectTimeout: connectTimeout, requestTimeout: requestTimeout, forcedRefreshMinInterval: forced)
    }

    // MARK: - Field readers

    /// The members of the object at `path` by key, after recording a problem for each key not in
    /// `known`: the message of `extra` for a key refused on purpose (an inline secret), else the
    /// nearest known key or the list of them.
    mutating func checkedFields(
        _ members: [JSONValue.Member], known: [String], path: String, extra: [String: String] = [:]
    ) -> [String: JSONValue] {
        for member in members where !known.contains(member.key) {
            let where_ = path.isEmpty ? member.key : "\(path).\(member.key)"
            if let message = extra[member.key] {
                problem(where_, message)
                continue
            }
            let nearest = known.min { editDistance(member.key, $0) < editDistance(member.key, $1) }
            let hint =
                nearest.flatMap {
                    editDistance(member.key, $0) <= max(2, $0.count / 3) ? " (did you mean '\($0)'?)" : nil
                }
                ?? "; known keys: \(known.joined(separator: ", "))"
            problem(where_, "unknown key at line \(member.line)\(hint)")
        }
        return Dictionary(uniqueKeysWithValues: members.map { ($0.key, $0.value) })
    }

    mutating func string(_ value: JSONValue?, _ path: String) -> String? {
        switch value {
        case nil, .null?: return nil
        case .string(let text)?: return text
        case let other?:
            problem(path, "must be a string, not \(other.typeName)")
            return nil
        }
    }

    mutating func boolean(_ value: JSONValue?, _ path: String) -> Bool? {
        switch value {
        case nil: return nil
        case .bool(let flag)?: return flag
        case let other?:
            problem(path, "must be true or false, not \(other.typeName)")
            return nil
        }
    }

    mutating func integer(_ value: JSONValue?, _ path: String, range: ClosedRange<Int>) -> Int? {
        switch value {
        case nil: return nil
        case .number(let text)?:
            guard let number = Int(text), range.contains(number) else {
                problem(path, "must be a whole number from \(range.lowerBound) to \(range.upperBound), not \(text)")
                return nil
            }
            return number
        case .string(let text)?:
            problem(path, "must be a whole number without quotes, not the string \"\(text.prefix(40))\"")
            return nil
        case let other?:
            problem(path, "must be a whole number, not \(other.typeName)")
            return nil
        }
    }

    mutating func duration(_ value: JSONValue?, _ path: String) -> Duration? {
        switch value {
        case nil: return nil
        case .string(let text)?:
            guard let duration = parseDuration(text) else {
                problem(
                    path,
                    "'\(text)' is not a duration: write a whole number and a unit (ms, s, m, h), as in \"250ms\", \"60s\", \"5m\", \"1h\""
                )
                return nil
            }
            return duration
        case .number(let text)?:
            problem(path, "\(text) has no unit: write a string with one, as in \"\(text)s\"")
            return nil
        case let other?:
            problem(path, "must be a duration string such as \"60s\", not \(other.typeName)")
            return nil
        }
    }

    mutating func url(_ value: JSONValue?, _ path: String, allowInsecure: Bool) -> URL? {
        guard let value else {
            problem(path, "missing: the provider's token endpoint, e.g. https://auth.example.com/oauth/token")
            return nil
        }
        guard let text = string(value, path) else { return nil }
        guard let url = URL(string: text), let scheme = url.scheme?.lowercased(), let host = url.host, !host.isEmpty
        else {
            // Not quoted: a URL may carry credentials (user-info, a query parameter).
            problem(path, "not an absolute URL: use one such as https://auth.example.com/oauth/token")
            return nil
        }
        switch scheme {
        case "https":
            return url
        case "http":
            if allowInsecure || HostNames.isLoopback(host) { return url }
            problem(
                path,
                "http:// sends the client secret and tokens in clear text: use https, or set \"allow_insecure_http\": true for this service if you really must"
            )
            return nil
        default:
            problem(path, "the scheme '\(scheme)' is not supported: use https")
            return nil
        }
    }

    mutating func clientSecret(_ fields: [String: JSONValue], path: String, needed: Bool) -> Secret? {
        let (present, secret) = secretSource(fields, prefix: "client_secret", path: path)
        if !present && needed {
            problem(
                path, "the client_credentials grant needs a client secret: set client_secret_env or client_secret_file")
        }
        return secret
    }

    /// `client_secret_fallback_env` / `_file`: tried once when the primary secret gets `invalid_client`.
    /// Needs a primary secret. Equal to the primary it is accepted (harmless; the retry just fails the same way).
    mutating func clientSecretFallback(_ fields: [String: JSONValue], path: String, hasPrimary: Bool) -> Secret? {
        let (present, secret) = secretSource(fields, prefix: "client_secret_fallback", path: path)
        guard present else { return nil }
        guard hasPrimary else {
            let key =
                fields["client_secret_fallback_env"] != nil
                ? "client_secret_fallback_env" : "client_secret_fallback_file"
            problem(
                "\(path).\(key)",
                "a fallback secret needs a primary one: set client_secret_env or client_secret_file as well")
            return nil
        }
        return secret
    }

    /// Reads `<prefix>_env` or `<prefix>_file` (at most one). Returns whether either key is set, and the secret.
    mutating func secretSource(_ fields: [String: JSONValue], prefix: String, path: String) -> (Bool, Secret?) {
        let envKey = prefix + "_env"
        let fileKey = prefix + "_file"
        let variable = string(fields[envKey], "\(path).\(envKey)")
        let file = string(fields[fileKey], "\(path).\(fileKey)")
        switch (variable, file) {
        case (nil, nil):
            return (fields[envKey] != nil || fields[fileKey] != nil, nil)
        case (.some, .some):
            problem(path, "set \(envKey) or \(fileKey), not both")
            return (true, nil)
        case (let name?, nil):
            guard let value = environment[name], !value.isEmpty else {
                problem(
                    "\(path).\(envKey)",
                    "the environment variable \(name) is not set (or empty): export it before starting Baton")
                return (true, nil)
            }
            return (true, Secret(value))
        case (nil, let file?):
            let resolved = resolvedPath(file)
            let data: Data
            do {
                // Whoever can read the file holds the client secret: only its owner may.
                data = try SecretFile.read(resolved)
            } catch {
                switch error {
                case .insecure(let mode):
                    problem("\(path).\(fileKey)", SecretFile.insecureAdvice(path: resolved, mode: mode))
                case .unreadable(let reason):
                    let known = FileManager.default.fileExists(atPath: resolved)
                    problem("\(path).\(fileKey)", "cannot read '\(resolved)': \(known ? reason : "no such file")")
                }
                return (true, nil)
            }
            let value = String(decoding: data, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
            guard !value.isEmpty else {
                problem("\(path).\(fileKey)", "'\(resolved)' is empty")
                return (true, nil)
            }
            return (true, Secret(value))
        }
    }

    /// The key schema's rule for service names, as a problem message, or `nil` when `name` is fine.
    static func serviceNameProblem(_ name: String) -> String? {
        KeyNameRules.nameProblem(name, kind: "service name")
    }
}
