/// One reply from Redis, mapped from hiredis's `redisReply` (RESP2: hiredis 0.14.1 has no RESP3).
///
/// Bulk strings are kept as raw bytes so that binary values (NUL bytes included) survive unchanged.
public enum RESPValue: Sendable, Hashable {
    /// A simple-string status reply, such as `OK` or `PONG`.
    case status(String)
    /// An error reply, with Redis's text verbatim (for example `WRONGTYPE Operation against a key ...`).
    ///
    /// Top-level error replies are thrown as ``RedisError/server(_:)`` by ``RedisConnection/send(_:)``;
    /// this case appears inside arrays (`EXEC`, script results) and in ``RedisConnection/pipeline(_:)``.
    case error(String)
    /// An integer reply.
    case integer(Int64)
    /// A bulk string reply, binary-safe.
    case bulk([UInt8])
    /// The nil reply (a missing key, a timed-out blocking pop).
    case null
    /// A multi-bulk reply.
    case array([RESPValue])
}

extension RESPValue {
    /// The value as UTF-8 text, for bulk and status replies; `nil` for anything else or invalid UTF-8.
    public var string: String? {
        switch self {
        case .bulk(let bytes): return String(validating: bytes, as: UTF8.self)
        case .status(let text): return text
        default: return nil
        }
    }

    /// The raw bytes of a bulk or status reply.
    public var bytes: [UInt8]? {
        switch self {
        case .bulk(let bytes): return bytes
        case .status(let text): return Array(text.utf8)
        default: return nil
        }
    }

    /// The value as an integer: integer replies, and bulk replies that hold a decimal integer.
    public var integer: Int64? {
        switch self {
        case .integer(let value): return value
        case .bulk, .status: return string.flatMap { Int64($0) }
        default: return nil
        }
    }

    /// The elements of an array reply.
    public var array: [RESPValue]? {
        if case .array(let elements) = self { return elements }
        return nil
    }

    /// Whether this is the nil reply.
    public var isNull: Bool {
        if case .null = self { return true }
        return false
    }

    /// The server's error text when this is an error reply.
    public var errorMessage: String? {
        if case .error(let message) = self { return message }
        return nil
    }
}

extension RESPValue: CustomStringConvertible {
    /// A short, human-readable rendering for logs and error messages; long bulk values are truncated.
    public var description: String {
        switch self {
        case .status(let text): return text
        case .error(let text): return "(error) \(text)"
        case .integer(let value): return "(integer) \(value)"
        case .null: return "(nil)"
        case .bulk(let bytes):
            let shown = bytes.prefix(64)
            let text = String(decoding: shown, as: UTF8.self)
            return "\"\(text)\(bytes.count > shown.count ? "…(\(bytes.count) bytes)" : "")\""
        case .array(let elements):
            return "[" + elements.map(\.description).joined(separator: ", ") + "]"
        }
    }
}
