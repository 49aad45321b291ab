import BatonSupport
import Foundation

/// `encryption` and `redis_password_file`, with their environment overrides
/// (`BATON_ENCRYPTION_KEYS`, `BATON_REDIS_PASSWORD`). No message here ever holds key material or
/// a password: only paths, variable names, kids and positions.
extension ConfigurationValidator {
    static let encryptionKeys = ["keys_file"]

    static let missingEncryption = """
        missing: refresh tokens are encrypted at rest by default, and no key is set. Make one with \
        `baton keygen > /etc/baton/encryption-keys && chmod 600 /etc/baton/encryption-keys`, then write \
        "encryption": {"keys_file": "/etc/baton/encryption-keys"} (or export \(BatonDefaults.Environment.encryptionKeys) \
        with the file's contents); or write "encryption": "none" to store refresh tokens in plain text
        """

    static let plainTextWarning = """
        encryption is "none": refresh tokens are stored in plain text (in Redis, its backups and replicas, and the \
        local spool). Make a key with `baton keygen` and set "encryption": {"keys_file": PATH} or \
        \(BatonDefaults.Environment.encryptionKeys)
        """

    static let inlinePasswordWarning = """
        redis_url has an inline password: move it to \(BatonDefaults.Environment.redisPassword) or redis_password_file \
        (a file of mode 0600) and leave it out of the URL (redis://USER:@host:port/db for an ACL user)
        """

    /// `encryption`: `"none"` or `{"keys_file": PATH}`; `BATON_ENCRYPTION_KEYS`, when set, wins
    /// (the file's setting is still checked for its form, but its keys file is not read). Neither
    /// is a problem: encryption is the default and needs a key.
    mutating func encryption(_ value: JSONValue?) -> SecretEncryption {
        let variable = BatonDefaults.Environment.encryptionKeys
        let fromEnvironment = BatonDefaults.Environment.value(variable, in: environment)
        var keysFile: String?
        switch value {
        case nil, .null?:
            if fromEnvironment == nil { problem("encryption", Self.missingEncryption) }
        case .string("none")?:
            break
        case .string?:
            // Not quoted: a key pasted here would otherwise be repeated in the message.
            problem(
                "encryption",
                "the only string accepted is \"none\": write \"none\" or {\"keys_file\": PATH} (keys never go in this file)"
            )
        case .object(let members)?:
            let fields = checkedFields(
                members, known: Self.encryptionKeys, path: "encryption",
                extra: ["keys": "inline keys are refused (this file gets copied around): use keys_file or \(variable)"])
            if let path = string(fields["keys_file"], "encryption.keys_file") {
                if path.isEmpty {
                    problem("encryption.keys_file", "is empty: name the file `baton keygen` wrote")
                } else {
                    keysFile = resolvedPath(path)
                }
            } else if fields["keys_file"] == nil {
                problem("encryption.keys_file", "missing: the file of keys `baton keygen` wrote (mode 0600)")
            }
        case let other?:
            problem("encryption", "must be \"none\" or an object {\"keys_file\": PATH}, not \(other.typeName)")
        }
        if let fromEnvironment {
            do {
                return .keyring(try Keyring(parsing: fromEnvironment, source: variable))
            } catch {
                problem(variable, error.description)
                return .none
            }
        }
        guard let keysFile else { return .none }
        do {
            return .keyring(try Keyring.load(keysFile: keysFile))
        } catch {
            problem("encryption.keys_file", error.description)
            return .none
        }
    }

    /// `redis_password_file` (mode 0600 or stricter) or `BATON_REDIS_PASSWORD` (which wins, and
    /// then the file is not read): the password for a `redis_url` written without one. With
    /// either, a Redis URL that carries a password of its own is a problem: two passwords are
    /// ambiguous.
    /// - Parameters:
    ///   - value: the `redis_password_file` member.
    ///   - redisURL: the Redis URL in force (`BATON_REDIS_URL` or `redis_url`).
    mutating func redisPassword(_ value: JSONValue?, redisURL: String) -> Secret? {
        let variable = BatonDefaults.Environment.redisPassword
        let file = string(value, "redis_password_file").map(resolvedPath)
        let password: Secret?
        let source: String
        if let fromEnvironment = BatonDefaults.Environment.value(variable, in: environment) {
            (password, source) = (Secret(fromEnvironment), variable)
        } else if let file {
            (password, source) = (passwordFile(file), "redis_password_file")
        } else {
            return nil
        }
        if password != nil && RedisURLCredentials.hasPassword(redisURL) {
            problem(
                source,
                "the Redis URL (redis_url or \(BatonDefaults.Environment.redisURL)) carries a password too: keep one. "
                    + "To name an ACL user and take its password from here, leave the password out of the URL: "
                    + "redis://USER:@host:port/db")
            return nil
        }
        return password
    }

    private mutating func passwordFile(_ path: String) -> Secret? {
        let text: String
        do {
            text = String(decoding: try SecretFile.read(path), as: UTF8.self)
        } catch {
            switch error {
            case .insecure(let mode):
                problem("redis_password_file", SecretFile.insecureAdvice(path: path, mode: mode))
            case .unreadable(let reason):
                problem("redis_password_file", "\(path) cannot be read: \(reason)")
            }
            return nil
        }
        let password = text.trimmingCharacters(in: .whitespacesAndNewlines)
        guard !password.isEmpty else {
            problem("redis_password_file", "\(path) is empty: write the password of the Redis user in it")
            return nil
        }
        return Secret(password)
    }

    /// A path from the file, relative ones taken from the configuration file's folder.
    func resolvedPath(_ path: String) -> String {
        path.hasPrefix("/") ? path : URL(fileURLWithPath: baseDirectory).appendingPathComponent(path).path
    }
}
