import BatonSupport
import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// Rotated refresh tokens that Redis does not have yet, on local disk, so that they survive the
/// process: the refresh protocol writes one here (mode 0600, fsync'd) *before* it persists a
/// rotated token to Redis, and removes it once Redis has it or has refused it as superseded.
/// Every `baton serve` and `baton refresh` on the host replays what it finds at start, through
/// the same fenced persist, so a crash, a SIGTERM during a Redis outage or a power cut between the
/// provider's answer and the write loses nothing.
///
/// Layout: `<state_dir>/spool/<service>.<fence>.<store>.json`, one file per service and fence
/// (`<store>` a short hash of the Redis address, database and key prefix it belongs to),
/// the folder mode 0700. With an encryption keyring the token in each file is sealed like the
/// ones in Redis (AES-256-GCM under the primary key, bound to the store, service and fence);
/// with `"encryption": "none"` it is in the clear (and a file in the clear, written before
/// encryption was configured, is still replayed: it may hold the only valid token). Either way keep `state_dir` on persistent
/// storage that only Baton's user can read.
///
/// The writer holds an exclusive `flock` on its file until Redis has the token, and a replay
/// skips locked files, so processes sharing a `state_dir` never replay each other's tokens in
/// flight; the kernel drops the lock when a process dies, which makes its files replayable.
public struct RotatedTokenSpool: Sendable {
    /// A spooled token: what the fenced persist needs to store it.
    public struct Entry: Sendable, Equatable {
        /// The Redis address, database and key prefix it belongs to (``TokenStore/location``):
        /// only a store at that location replays it.
        public let store: String
        /// The service.
        public let service: String
        /// The fence of the lease under which the provider rotated it.
        public let fence: Int64
        /// The identity of the stored secret the provider call used (``SecretEnvelope/identity``).
        public let usedSecret: String?
        /// The rotated refresh token.
        public let refreshToken: String
        /// The fingerprint of the client it was issued to.
        public let client: String?

        /// Creates an entry.
        public init(
            store: String, service: String, fence: Int64, usedSecret: String?, refreshToken: String,
            client: String? = nil
        ) {
            self.store = store
            self.service = service
            self.fence = fence
            self.usedSecret = usedSecret
            self.refreshToken = refreshToken
            self.client = client
        }

        var fileName: String {
            // FNV-1a: a stable short name for the store (not a security measure).
            var hash: UInt64 = 0xcbf2_9ce4_8422_2325
            for byte in store.utf8 { hash = (hash ^ UInt64(byte)) &* 0x100_0000_01b3 }
            return "\(service).\(fence).\(String(hash, radix: 16)).json"
        }
    }

    /// Why the spool could not be used. Never carries a token.
    public struct SpoolError: Error, CustomStringConvertible {
        /// The file or folder.
        public let path: String
        /// What failed (`errno` text or a parse problem).
        public let reason: String

        public var description: String {
            "the rotated-token spool at \(path) failed: \(reason): check that state_dir is on writable, persistent storage owned by Baton's user"
        }
    }

    // @unchecked: `lock` guards the file descriptor, which `deinit` must also release.
    /// A spool file this process holds (locked) until ``RotatedTokenSpool/remove(_:)``.
    public final class Claim: @unchecked Sendable {
        /// The file.
        public let path: String
        private var descriptor: Int32
        private let lock = NSLock()

        init(path: String, descriptor: Int32) {
            self.path = path
            self.descriptor = descriptor
        }

        deinit { release() }

        /// Closes the file, which drops its lock (the file stays unless removed).
        func release() {
            lock.withLock {
                if descriptor >= 0 { close(descriptor) }
                descriptor = -1
            }
        }
    }

    /// The spool folder (`<state_dir>/spool`).
    public let directory: String
    /// Seals the tokens written, opens the ones read.
    let sealer: SecretSealer

    /// A spool under `stateDirectory`, its tokens protected as `encryption` says.
    public init(stateDirectory: String, encryption: SecretEncryption) {
        self.directory = stateDirectory + "/spool"
        // The spool's binding names the store (address, database and prefix) itself.
        self.sealer = SecretSealer(prefix: "", encryption: encryption)
    }

    /// The additional data of a spooled token: everything its replay acts on, so that no field of
    /// the file can be changed without the token failing to open.
    private static func binding(store: String, service: String, fence: Int64, usedSecret: String?, client: String?)
        -> String
    {
        "baton-spool-v2\n\(store)\n\(service)\n\(fence)\n\(usedSecret ?? "")\n\(client ?? "")"
    }

    /// Writes `entry` durably: a temporary file (0600) written, locked and fsync'd, renamed into
    /// place, and the folder fsync'd.
    /// - Returns: the locked file, for ``remove(_:)``.
    public func write(_ entry: Entry) throws -> Claim {
        try makeDirectory()
        var object: [String: Any] = ["store": entry.store, "service": entry.service, "fence": entry.fence]
        if let sealed = try sealer.sealIfKeyed(
            entry.refreshToken,
            binding: Self.binding(
                store: entry.store, service: entry.service, fence: entry.fence, usedSecret: entry.usedSecret,
                client: entry.client))
        {
            object["sealed_refresh_token"] = sealed.fields
        } else {
            object["refresh_token"] = entry.refreshToken
        }
        if let used = entry.usedSecret { object["used_secret"] = used }
        if let client = entry.client { object["client"] = client }
        let bytes = Array(try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys]))
        let path = directory + "/" + entry.fileName
        let temporary = path + ".tmp-\(getpid())"
        let descriptor = open(temporary, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
        guard descriptor >= 0 else { throw failure(temporary) }
        guard flock(descriptor, LOCK_EX) == 0 else {
            let error = failure(temporary)
            close(descriptor)
            unlink(temporary)
            throw error
        }
        var written = 0
        while written < bytes.count {
            let count = bytes[written...].withUnsafeBytes { Glibc.write(descriptor, $0.baseAddress, $0.count) }
            if count < 0 && errno == EINTR { continue }
            guard count > 0 else {
                let error = failure(temporary)
                close(descriptor)
                unlink(temporary)
                throw error
            }
            written += count
        }
        guard fsync(descriptor) == 0 else {
            let error = failure(temporary)
            close(descriptor)
            unlink(temporary)
            throw error
        }
        guard rename(temporary, path) == 0 else {
            let error = failure(path)
            close(descriptor)
            unlink(temporary)
            throw error
        }
        let claim = Claim(path: path, descriptor: descriptor)
        // The file is in place and locked; a folder fsync that fails now costs at most its name
        // after a power cut, and the write to Redis follows at once. Never drop the claim here.
        try? syncDirectory()
        return claim
    }

    /// Removes a spooled file once Redis has its token (or has a newer one), and drops its lock.
    public func remove(_ claim: Claim) {
        unlink(claim.path)
        claim.release()
        try? syncDirectory()
    }

    /// Claims every spooled entry that no live process holds, oldest fence first. Files that
    /// cannot be read are reported in `unreadable` (never deleted: a human looks at them).
    public func claimAll() -> (entries: [(entry: Entry, claim: Claim)], unreadable: [SpoolError]) {
        guard let names = try? FileManager.default.contentsOfDirectory(atPath: directory) else { return ([], []) }
        var entries: [(Entry, Claim)] = []
        var unreadable: [SpoolError] = []
        // `*.json.tmp-PID`: a write whose process died before the rename. Complete ones are
        // replayed like the others; partial ones hold no usable token and are removed.
        for name in names.sorted() where name.hasSuffix(".json") || name.contains(".json.tmp-") {
            let path = directory + "/" + name
            let temporary = !name.hasSuffix(".json")
            let descriptor = open(path, O_RDONLY | O_CLOEXEC)
            guard descriptor >= 0 else { continue }  // removed meanwhile
            guard flock(descriptor, LOCK_EX | LOCK_NB) == 0 else {
                close(descriptor)
                continue
            }  // in flight elsewhere
            let claim = Claim(path: path, descriptor: descriptor)
            // Stored and removed before we locked it.
            guard FileManager.default.fileExists(atPath: path) else { continue }
            guard let data = FileManager.default.contents(atPath: path),
                let object = try? JSONSerialization.jsonObject(with: data) as? [String: Any],
                let store = object["store"] as? String, let service = object["service"] as? String,
                let fence = (object["fence"] as? NSNumber)?.int64Value
            else {
                if temporary {
                    unlink(path)
                } else {
                    unreadable.append(
                        SpoolError(path: path, reason: "not a spooled token (left in place for inspection)"))
                }
                continue
            }
            let token: String
            do {
                token = try spooledToken(
                    object,
                    binding: Self.binding(
                        store: store, service: service, fence: fence, usedSecret: object["used_secret"] as? String,
                        client: object["client"] as? String))
            } catch {
                // Complete JSON: a real token may be in it, even in a temporary file. Never delete it.
                unreadable.append(SpoolError(path: path, reason: "\(error) (left in place)"))
                continue
            }
            let used = object["used_secret"] as? String
            entries.append(
                (
                    Entry(
                        store: store, service: service, fence: fence, usedSecret: used, refreshToken: token,
                        client: object["client"] as? String), claim
                ))
        }
        return (entries.sorted { $0.0.fence < $1.0.fence }.map { (entry: $0.0, claim: $0.1) }, unreadable)
    }

    /// The token of a spool file's JSON: in the clear, or sealed.
    private func spooledToken(_ object: [String: Any], binding: String) throws -> String {
        if let token = object["refresh_token"] as? String, !token.isEmpty { return token }
        guard let fields = object["sealed_refresh_token"] as? [String: Any], let sealed = SealedText(fields: fields)
        else {
            throw SpoolFileProblem("it holds no refresh token")
        }
        return try sealer.open(sealed, binding: binding) {
            SpoolFileProblem("its token is sealed with key '\(sealed.kid)', which this keyring lacks: add that key")
        } failed: {
            SpoolFileProblem("its token does not decrypt with key '\(sealed.kid)' (another key, or a changed file)")
        }
    }

    /// Why one spool file cannot be replayed.
    private struct SpoolFileProblem: Error, CustomStringConvertible {
        let description: String
        init(_ description: String) { self.description = description }
    }

    private func makeDirectory() throws {
        var isDirectory: ObjCBool = false
        if FileManager.default.fileExists(atPath: directory, isDirectory: &isDirectory), isDirectory.boolValue {
            return
        }
        do {
            try FileManager.default.createDirectory(
                atPath: directory, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        } catch {
            throw SpoolError(
                path: directory, reason: "cannot create the folder (\((error as NSError).localizedDescription))")
        }
    }

    private func syncDirectory() throws {
        let descriptor = open(directory, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard descriptor >= 0 else { throw failure(directory) }
        defer { close(descriptor) }
        guard fsync(descriptor) == 0 else { throw failure(directory) }
    }

    private func failure(_ path: String) -> SpoolError {
        SpoolError(path: path, reason: String(cString: strerror(errno)))
    }
}
