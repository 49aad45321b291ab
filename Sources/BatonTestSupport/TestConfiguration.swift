import BatonSupport
import Foundation

/// A Baton configuration file for tests, built from the few settings a test cares about, so that
/// tests do not each carry their own JSON. Values are JSON values (`String`, `Int`, `Bool`,
/// dictionaries); durations are strings such as `"5s"`, as a user would write them.
///
/// ```swift
/// let json = TestConfiguration(redisURL: redis.url, settings: ["lock_ttl": "5s"])
///     .service("my-api", tokenURL: provider.tokenURL, ["refresh_buffer": "2s"])
///     .json
/// ```
public struct TestConfiguration {
    /// Top-level settings (`redis_url` is added from `redisURL`).
    public var settings: [String: Any]
    /// Services by name.
    public var services: [String: [String: Any]] = [:]

    /// The environment variable the default client secret is read from (``environment``).
    public static let secretVariable = "BATON_TEST_CLIENT_SECRET"

    /// The test keyring (``TestKeyring/text``: test-only keys that protect nothing real). ``write(in:name:)`` puts it in a keys file, ``environment`` and
    /// ``BatonExecutable`` in `BATON_ENCRYPTION_KEYS`.
    public static let encryptionKeys = TestKeyring.text
    /// The name of the keys file ``write(in:name:)`` writes beside the configuration.
    public static let keysFileName = "encryption-keys"

    /// A configuration for `redisURL` (none: Baton's default) with these top-level settings.
    public init(redisURL: String? = nil, settings: [String: Any] = [:]) {
        self.settings = settings
        if let redisURL { self.settings["redis_url"] = redisURL }
    }

    /// Adds a service of the fake provider's default client, with `extra` keys added or replacing
    /// the defaults. Its secret comes from ``secretVariable`` (in-process tests, with
    /// ``environment``), or with `secretFile` from the file `client-secret` beside the
    /// configuration, which ``write(in:name:)`` writes (for `baton` processes).
    public func service(_ name: String, tokenURL: String, secretFile: Bool = false, _ extra: [String: Any] = [:])
        -> TestConfiguration
    {
        var copy = self
        var service: [String: Any] = ["token_url": tokenURL, "client_id": FakeOAuthProvider.clientID]
        service[secretFile ? "client_secret_file" : "client_secret_env"] =
            secretFile ? "client-secret" : Self.secretVariable
        for (key, value) in extra { service[key] = value }
        copy.services[name] = service
        return copy
    }

    /// The environment the configuration needs: the client secret, and the test keyring in
    /// `BATON_ENCRYPTION_KEYS` (``json`` names no keys file).
    public static var environment: [String: String] {
        [secretVariable: FakeOAuthProvider.clientSecret, BatonDefaults.Environment.encryptionKeys: encryptionKeys]
    }

    /// The JSON text.
    public var json: String { json(adding: [:]) }

    private func json(adding extra: [String: Any]) -> String {
        var object = settings
        object["services"] = services
        for (key, value) in extra where object[key] == nil { object[key] = value }
        // Only JSON values go in, so serialising cannot fail.
        let data = try! JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .withoutEscapingSlashes])
        return String(decoding: data, as: UTF8.self)
    }

    /// Writes the configuration to `baton.json` (or `name`) in `folder`, the fake provider's
    /// client secret to `client-secret` beside it, and, unless ``settings`` has its own
    /// `encryption`, the test keyring to ``keysFileName`` (mode 0600) with
    /// `"encryption": {"keys_file": ...}` naming it, and unless it has its own `http`,
    /// `"http": {"listen": "off"}`; returns the configuration's path.
    public func write(in folder: URL, name: String = "baton.json") throws -> String {
        let secret = folder.appendingPathComponent("client-secret")
        try FakeOAuthProvider.clientSecret.write(to: secret, atomically: true, encoding: .utf8)
        // Baton refuses a client secret file that group or others can read.
        try FileManager.default.setAttributes([.posixPermissions: 0o600], ofItemAtPath: secret.path)
        try Self.writeKeysFile(in: folder)
        let path = folder.appendingPathComponent(name).path
        // Replicas of one test, and tests run at once, would clash on the default http.listen.
        try json(adding: ["encryption": ["keys_file": Self.keysFileName], "http": ["listen": "off"]]).write(
            toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    /// Writes the test keyring to ``keysFileName`` in `folder`, mode 0600; returns its path.
    @discardableResult
    public static func writeKeysFile(in folder: URL) throws -> String {
        let path = folder.appendingPathComponent(keysFileName).path
        try (encryptionKeys + "\n").write(toFile: path, atomically: true, encoding: .utf8)
        try FileManager.default.setAttributes([.posixPermissions: 0o600], ofItemAtPath: path)
        return path
    }
}
