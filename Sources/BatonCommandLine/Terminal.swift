#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// Writes to standard output and standard error with `write(2)`, unbuffered: nothing printed is
/// lost if the process is killed, and no shared C `FILE*` global is touched from Swift.
public enum Terminal {
    /// Writes a line to standard output.
    public static func out(_ line: String) { write(1, line + "\n") }

    /// Writes a line to standard error, with control characters escaped
    /// (``escapingControlCharacters(_:)``): error messages quote arguments, service names and
    /// provider text, none of which may move the cursor, recolour or retitle the terminal.
    public static func err(_ line: String) { write(2, escapingControlCharacters(line) + "\n") }

    /// `text` with every control character except line feed and tab written as a visible escape:
    /// `\r`, `\u{1B}` (ESC, which starts terminal escape sequences), C1 controls, DEL, and the
    /// bidirectional overrides that can make a line read differently than it is.
    public static func escapingControlCharacters(_ text: String) -> String {
        var result = ""
        result.unicodeScalars.reserveCapacity(text.unicodeScalars.count)
        for scalar in text.unicodeScalars {
            switch scalar.value {
            case 0x0A, 0x09: result.unicodeScalars.append(scalar)
            case 0x0D: result += "\\r"
            case 0x00...0x1F, 0x7F...0x9F, 0x202A...0x202E, 0x2066...0x2069:
                result += "\\u{" + String(scalar.value, radix: 16, uppercase: true) + "}"
            default: result.unicodeScalars.append(scalar)
            }
        }
        return result
    }

    private static func write(_ descriptor: Int32, _ text: String) {
        var bytes = Array(text.utf8)
        var offset = 0
        while offset < bytes.count {
            let written = bytes.withUnsafeMutableBytes { buffer in
                #if canImport(Glibc)
                    Glibc.write(descriptor, buffer.baseAddress! + offset, buffer.count - offset)
                #else
                    Darwin.write(descriptor, buffer.baseAddress! + offset, buffer.count - offset)
                #endif
            }
            if written < 0 {
                if errno == EINTR { continue }
                return
            }
            offset += written
        }
    }
}
