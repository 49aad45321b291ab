import BatonConfig
import Foundation
import XCTest

/// `client_secret_file` and `client_secret_fallback_file` are refused when group or others may
/// read them, with the command that fixes it; the secret itself is never quoted.
final class SecretFileModeTests: XCTestCase {
    private var folder: URL!

    override func setUpWithError() throws {
        folder = FileManager.default.temporaryDirectory.appendingPathComponent("baton-mode-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        addTeardownBlock { [folder] in try? FileManager.default.removeItem(at: folder!) }
    }

    private func secretFile(_ name: String, mode: Int) throws -> String {
        let path = folder.appendingPathComponent(name).path
        try "file-secret-value\n".write(toFile: path, atomically: true, encoding: .utf8)
        try FileManager.default.setAttributes([.posixPermissions: mode], ofItemAtPath: path)
        return path
    }

    private func parse(_ keys: [String: String]) throws -> BatonConfiguration {
        var service = ["token_url": "https://auth.example/token", "client_id": "c"]
        service.merge(keys) { _, new in new }
        let data = try JSONSerialization.data(withJSONObject: ["services": ["my-api": service]])
        return try BatonConfiguration.parse(
            Array(data), environment: withTestKeyring(["NEW": "new-secret"]), baseDirectory: folder.path,
            file: "test.json")
    }

    private func problems(_ keys: [String: String]) -> [String] {
        do {
            _ = try parse(keys)
            XCTFail("accepted \(keys)")
            return []
        } catch let error as ConfigurationError {
            return error.problems.map(\.description)
        } catch {
            XCTFail("\(error)")
            return []
        }
    }

    func testAGroupOrWorldReadableSecretFileIsRefusedWithTheChmodCommand() throws {
        for mode in [0o644, 0o640, 0o604, 0o660, 0o606] {
            let path = try secretFile("secret-\(mode)", mode: mode)
            for key in ["client_secret_file", "client_secret_fallback_file"] {
                var keys = [key: path]
                if key == "client_secret_fallback_file" { keys["client_secret_env"] = "NEW" }
                let found = problems(keys)
                XCTAssertEqual(
                    found,
                    [
                        "services.my-api.\(key): \(path) has mode \(String(mode, radix: 8)): group and others must not "
                            + "have access. Run `chmod 600 \(path)`"
                    ])
                XCTAssertFalse(found.joined().contains("file-secret-value"), "the secret was quoted: \(found)")
            }
        }
    }

    func testAnOwnerOnlySecretFileIsRead() throws {
        for mode in [0o600, 0o400] {
            let path = try secretFile("secret-\(mode)", mode: mode)
            XCTAssertEqual(
                try parse(["client_secret_file": path]).service("my-api")?.clientSecret?.reveal(), "file-secret-value")
            XCTAssertEqual(
                try parse(["client_secret_env": "NEW", "client_secret_fallback_file": path]).service("my-api")?
                    .clientSecretFallback?.reveal(), "file-secret-value")
        }
    }
}
