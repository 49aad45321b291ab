import Foundation

/// Reading a file that holds a secret (encryption keys, a client secret): refused unless only its
/// owner may access it (mode 0600 or stricter), since whoever reads it holds the secret.
public enum SecretFile {
    /// Why a secret file was not read. Never carries the file's content.
    public enum Failure: Error, Sendable, Equatable {
        /// Group or others may access the file; `mode` is its permission bits.
        case insecure(mode: UInt16)
        /// It could not be opened or read; `reason` is the system's word for it.
        case unreadable(reason: String)
    }

    /// What to tell a user whose secret file at `path` has `mode`: the mode and the fix.
    public static func insecureAdvice(path: String, mode: UInt16) -> String {
        "\(path) has mode \(String(mode, radix: 8)): group and others must not have access. Run `chmod 600 \(path)`"
    }

    /// Reads `path`, checking the mode of the file actually opened (`fstat`), not of whatever the
    /// path names a moment later.
    /// - Throws: ``Failure``.
    public static func read(_ path: String) throws(Failure) -> Data {
        let descriptor = open(path, O_RDONLY | O_CLOEXEC)
        guard descriptor >= 0 else { throw .unreadable(reason: String(cString: strerror(errno))) }
        let handle = FileHandle(fileDescriptor: descriptor, closeOnDealloc: true)
        var status = stat()
        guard fstat(descriptor, &status) == 0 else { throw .unreadable(reason: String(cString: strerror(errno))) }
        let mode = UInt16(status.st_mode & 0o7777)
        guard mode & 0o077 == 0 else { throw .insecure(mode: mode) }
        do {
            return try handle.readToEnd() ?? Data()
        } catch {
            throw .unreadable(reason: "\(error)")
        }
    }
}
