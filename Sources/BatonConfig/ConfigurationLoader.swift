import BatonSupport
import Foundation

extension BatonConfiguration {
    /// Environment variables that override the file (``BatonDefaults/Environment``).
    public static let redisURLVariable = BatonDefaults.Environment.redisURL
    /// See ``redisURLVariable``.
    public static let prefixVariable = BatonDefaults.Environment.prefix

    /// Reads and validates a configuration file. Relative paths (`client_secret_file`,
    /// `encryption.keys_file`, `redis_password_file`, `state_dir`) are taken from the file's folder.
    /// - Throws: ``ConfigurationError`` listing every problem.
    public static func load(path: String, environment: [String: String] = ProcessInfo.processInfo.environment) throws
        -> BatonConfiguration
    {
        guard let data = FileManager.default.contents(atPath: path) else {
            let reason =
                FileManager.default.fileExists(atPath: path) ? "cannot be read (permissions?)" : "does not exist"
            throw ConfigurationError(
                file: path,
                problems: [
                    .init(
                        path: "",
                        message:
                            "the file \(reason): pass --config FILE or set \(BatonDefaults.Environment.configuration)")
                ])
        }
        let folder = URL(fileURLWithPath: path).deletingLastPathComponent().path
        return try parse(Array(data), environment: environment, baseDirectory: folder, file: path)
    }

    /// Validates a configuration document.
    /// - Throws: ``ConfigurationError`` listing every problem.
    public static func parse(
        _ bytes: [UInt8], environment: [String: String] = [:], baseDirectory: String = ".",
        file: String? = nil
    ) throws -> BatonConfiguration {
        let document: JSONValue
        do {
            document = try JSONReader.parse(bytes)
        } catch let error as JSONReader.SyntaxError {
            throw ConfigurationError(file: file, problems: [.init(path: "", message: "not valid JSON: \(error)")])
        }
        var validator = ConfigurationValidator(environment: environment, baseDirectory: baseDirectory)
        let configuration = validator.configuration(document)
        guard validator.problems.isEmpty, let configuration else {
            throw ConfigurationError(file: file, problems: validator.problems)
        }
        return configuration
    }
}
