import BatonCommandLine
import BatonSupport
import BatonTokens
import Foundation

/// `baton rekey [SVC...]`: seals every stored refresh token again under the primary key.
enum RekeyCommand {
    static let specification = CommandSpecification(
        name: "rekey", usage: ["baton rekey [SVC...] \(ConnectionOptions.tokens.group.synopsis)"],
        groups: [ConnectionOptions.tokens.group], positionals: 0...10_000,
        discussion: """
            Seals each service's stored refresh token (every known service, or the SVCs named) again
            under the primary key: the first key of BATON_ENCRYPTION_KEYS or of the configuration's
            encryption.keys_file. A token stored in plain text (alg none) is encrypted. The token,
            its fence and its identity stay the same, and each write is a compare-and-set on the
            exact envelope read, so replicas may keep refreshing: a rotation in between wins, and
            rekey reads that one again. Prints one line per service and a summary. Exits 0 when
            every token is under the primary key, 1 when one could not be read (a key missing from
            this keyring, a damaged envelope) or kept changing.

            Rotating a key (README "Rotating an encryption key"): add the new key after the old one
            on every replica, then put it first (restart the replicas in turn each time), run
            `baton rekey`, then drop the old key.
            """)

    /// How many times one service's envelope is read and re-sealed when it keeps changing.
    static let attemptsPerService = 5

    static func run(_ words: [String]) async throws -> ExitCode {
        guard let arguments = try specification.parseUnlessHelp(words) else { return .success }
        let context = try CommandContext(arguments)
        defer { context.shutDown() }
        try context.requireEncryption(for: "baton rekey")
        guard let primary = context.encryption?.keyring?.primary else {
            throw UsageError(
                "baton rekey seals tokens under the primary key, and the encryption here is \"none\": set \(BatonDefaults.Environment.encryptionKeys) or encryption.keys_file"
            )
        }
        var services = arguments.positionals
        if services.isEmpty { services = try await context.store.services() }
        var tally: [String: Int] = [:]
        for service in services {
            let (outcome, line) = await rekey(service, store: context.store)
            tally[outcome, default: 0] += 1
            (outcome == "failed" ? Terminal.err : Terminal.out)("\(service): \(line)")
        }
        let order = ["rekeyed", "current", "no_secret", "failed"]
        Terminal.out(
            "rekey to '\(primary.kid)': " + order.map { "\($0) \(tally[$0] ?? 0)" }.joined(separator: ", "))
        return (tally["failed"] ?? 0) == 0 ? .success : .failure
    }

    /// Re-seals one service's secret. Returns its tally (`rekeyed`, `current`, `no_secret`,
    /// `failed`) and a line for the operator, never containing a token.
    static func rekey(_ service: String, store: TokenStore) async -> (String, String) {
        do {
            for _ in 1...attemptsPerService {
                guard let stored = try await store.storedSecret(service) else {
                    return ("no_secret", "no refresh token stored")
                }
                if store.sealer.isCurrent(stored.stored) {
                    return ("current", "already under '\(stored.stored.kid ?? "none")' (fence \(stored.stored.fence))")
                }
                if try await store.reseal(service: service, stored: stored, replica: CommandContext.processLabel) {
                    return (
                        "rekeyed",
                        "re-encrypted from '\(stored.stored.kid ?? "none")' to '\(store.sealer.encryption.keyring?.primary.kid ?? "none")' (fence \(stored.stored.fence))"
                    )
                }
                // Changed between our read and our write (a rotation or a seed): read it again.
            }
            return ("failed", "its refresh token changed \(attemptsPerService) times while rekeying: run rekey again")
        } catch {
            return ("failed", "\(error)")
        }
    }
}
