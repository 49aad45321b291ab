import BatonCommandLine
import BatonSupport
import Foundation

/// `baton keygen [--kid NAME]`: prints a new encryption key as a keyring entry.
enum KeygenCommand {
    static let specification = CommandSpecification(
        name: "keygen", usage: ["baton keygen [--kid NAME]"], options: [.value("kid", "NAME")],
        discussion: """
            Prints a new AES-256 key (32 random bytes from OpenSSL) as one keyring entry,
            `kid:base64`, for BATON_ENCRYPTION_KEYS or a keys file (mode 0600). The kid defaults
            to `k` + today's UTC date (YYYYMMDD) + 4 random hex digits; --kid NAME sets it
            (1 to 64 characters of A-Z a-z 0-9 . _ -). The first entry of a keyring encrypts new
            refresh tokens; all of them decrypt. `baton rekey` re-encrypts stored ones under the
            first.
            """)

    static func run(_ words: [String]) async throws -> ExitCode {
        guard let arguments = try specification.parseUnlessHelp(words) else { return .success }
        let kid = arguments.value("kid")
        if let kid, !EncryptionKey.isValidKid(kid) {
            throw UsageError("--kid must be 1 to 64 characters of A-Z a-z 0-9 . _ -")
        }
        Terminal.out(try EncryptionKey.generate(kid: kid).keyringEntry)
        return .success
    }
}
