internal import CHiredis

// @unchecked: one owner at a time, like the connection that holds it.
/// hiredis's RESP parser (`redisReader`) on bytes Baton read from a socket it owns: the one piece
/// of hiredis Baton still uses. Feed it what the socket gave, then take complete replies out.
final class RESPReader: @unchecked Sendable {
    private let reader: UnsafeMutablePointer<redisReader>

    /// A parser with hiredis's default reply objects (`redisReply`, freed with `freeReplyObject`).
    init() {
        guard let reader = redisReaderCreate() else { fatalError("hiredis could not allocate a reply reader") }
        self.reader = reader
    }

    deinit {
        redisReaderFree(reader)
    }

    /// Appends bytes read from the socket.
    /// - Throws: ``ProtocolViolation`` when the parser is in an error state.
    func feed(_ bytes: UnsafeRawBufferPointer) throws(ProtocolViolation) {
        guard let base = bytes.baseAddress, !bytes.isEmpty else { return }
        guard redisReaderFeed(reader, base.assumingMemoryBound(to: CChar.self), bytes.count) == REDIS_OK else {
            throw ProtocolViolation(detail: errorText)
        }
    }

    /// The next complete reply, or `nil` when more bytes are needed.
    /// - Throws: ``ProtocolViolation`` for bytes that are not RESP.
    func next() throws(ProtocolViolation) -> RESPValue? {
        var raw: UnsafeMutableRawPointer?
        guard redisReaderGetReply(reader, &raw) == REDIS_OK else { throw ProtocolViolation(detail: errorText) }
        guard let raw else { return nil }
        defer { freeReplyObject(raw) }
        return Self.value(of: raw.assumingMemoryBound(to: redisReply.self))
    }

    /// The parser's complaint, e.g. `Protocol error, got "H" as reply type byte`.
    private var errorText: String {
        withUnsafeBytes(of: reader.pointee.errstr) { buffer in
            String(decoding: buffer.prefix { $0 != 0 }, as: UTF8.self)
        }
    }

    /// Copies a hiredis reply tree into a ``RESPValue``. The caller frees the tree.
    private static func value(of reply: UnsafeMutablePointer<redisReply>) -> RESPValue {
        let node = reply.pointee
        switch node.type {
        case REDIS_REPLY_STRING:
            return .bulk(bytes(node.str, count: node.len))
        case REDIS_REPLY_STATUS:
            return .status(String(decoding: bytes(node.str, count: node.len), as: UTF8.self))
        case REDIS_REPLY_ERROR:
            return .error(String(decoding: bytes(node.str, count: node.len), as: UTF8.self))
        case REDIS_REPLY_INTEGER:
            return .integer(Int64(node.integer))
        case REDIS_REPLY_ARRAY:
            var elements: [RESPValue] = []
            elements.reserveCapacity(node.elements)
            for index in 0..<node.elements {
                if let child = node.element[index] { elements.append(value(of: child)) } else { elements.append(.null) }
            }
            return .array(elements)
        default:
            return .null
        }
    }

    private static func bytes(_ pointer: UnsafeMutablePointer<CChar>?, count: Int) -> [UInt8] {
        guard let pointer, count > 0 else { return [] }
        return Array(UnsafeRawBufferPointer(start: pointer, count: count))
    }
}

/// Bytes from the server that are not valid RESP.
struct ProtocolViolation: Error {
    let detail: String
}

extension RedisCommand {
    /// Appends the command in RESP's request form: an array of bulk strings, binary-safe.
    func encode(into buffer: inout [UInt8]) {
        Self.appendHeader(UInt8(ascii: "*"), arguments.count, to: &buffer)
        for argument in arguments {
            Self.appendHeader(UInt8(ascii: "$"), argument.count, to: &buffer)
            buffer.append(contentsOf: argument)
            buffer.append(contentsOf: [13, 10])
        }
    }

    private static func appendHeader(_ marker: UInt8, _ count: Int, to buffer: inout [UInt8]) {
        buffer.append(marker)
        buffer.append(contentsOf: String(count).utf8)
        buffer.append(contentsOf: [13, 10])
    }
}
