import Foundation

/// Reads a file that holds a secret (encryption keys, a password), refusing one that group or
/// others may access: its mode must be 0600 or stricter. The mode checked is that of the file
/// actually opened (`fstat`), not of whatever the path names a moment later.
public enum OwnerOnlyFile {
    /// Why a secret file was not read. Never carries the file's contents.
    public enum Failure: Error, Equatable, Sendable {
        /// Group or others have some access: `chmod 600 PATH`.
        case insecure(mode: UInt16)
        /// It cannot be opened or read, or is not UTF-8 text; `reason` is the system's message.
        case unreadable(reason: String)
    }

    /// The contents of the file at `path`, as text.
    /// - Throws: ``Failure``.
    public static func read(_ path: String) throws(Failure) -> String {
        let descriptor = open(path, O_RDONLY | O_CLOEXEC)
        guard descriptor >= 0 else { throw .unreadable(reason: String(cString: strerror(errno))) }
        let handle = FileHandle(fileDescriptor: descriptor, closeOnDealloc: true)
        var status = stat()
        guard fstat(descriptor, &status) == 0 else { throw .unreadable(reason: String(cString: strerror(errno))) }
        let mode = UInt16(status.st_mode & 0o7777)
        guard mode & 0o077 == 0 else { throw .insecure(mode: mode) }
        let data: Data
        do {
            data = try handle.readToEnd() ?? Data()
        } catch {
            throw .unreadable(reason: "\(error)")
        }
        guard let text = String(data: data, encoding: .utf8) else { throw .unreadable(reason: "not UTF-8 text") }
        return text
    }
}
