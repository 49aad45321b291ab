import BatonConfig
import Foundation

extension FuzzTarget {
    /// `BatonConfiguration.parse`: never crashes, and no error quotes a client secret it read
    /// from the environment (`FUZZ_SECRET`) or from a file (`secret.txt` in the base folder)
    /// unless the input itself holds that text.
    static let configuration = FuzzTarget(
        name: "configuration", summary: "BatonConfiguration.parse (validation of a whole file)"
    ) { bytes throws(PropertyViolation) in
        do {
            _ = try BatonConfiguration.parse(
                bytes, environment: ["FUZZ_SECRET": ConfigurationSecrets.environmentValue],
                baseDirectory: ConfigurationSecrets.folder)
        } catch {
            let message = "\(error)"
            for secret in [ConfigurationSecrets.environmentValue, ConfigurationSecrets.fileValue]
            where message.contains(secret) && !bytes.contains(secret) {
                throw PropertyViolation(target: "configuration", message: "the error quotes a secret: \(message)")
            }
        }
    }
}

/// The secrets the configuration target offers: one in the environment, one in a file.
enum ConfigurationSecrets {
    static let environmentValue = "Fz-env-secret-7351"
    static let fileValue = "Fz-file-secret-9046"

    /// A folder holding `secret.txt`, made once per process (relative `client_secret_file`
    /// paths resolve against it).
    static let folder: String = {
        let folder = FileManager.default.temporaryDirectory
            .appendingPathComponent("baton-fuzz-\(ProcessInfo.processInfo.processIdentifier)").path
        try? FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        guard FileManager.default.createFile(atPath: folder + "/secret.txt", contents: Data(fileValue.utf8)) else {
            fatalError("cannot write \(folder)/secret.txt for the configuration target")
        }
        return folder
    }()
}

extension [UInt8] {
    /// Whether `text`'s UTF-8 bytes occur in these bytes.
    func contains(_ text: String) -> Bool {
        let needle = Array(text.utf8)
        guard !needle.isEmpty, needle.count <= count else { return needle.isEmpty }
        return (0...(count - needle.count)).contains { start in self[start..<start + needle.count].elementsEqual(needle)
        }
    }
}
