/// A value that can be sent as one argument of a Redis command.
///
/// Arguments travel as length-prefixed RESP bulk strings, never formatted
/// into a command string, so any bytes are safe, NUL included.
public protocol RedisArgumentConvertible: Sendable {
    /// The bytes sent to Redis for this argument.
    var redisArgument: [UInt8] { get }
}

extension String: RedisArgumentConvertible {
    public var redisArgument: [UInt8] { Array(utf8) }
}

extension Substring: RedisArgumentConvertible {
    public var redisArgument: [UInt8] { Array(utf8) }
}

extension Array: RedisArgumentConvertible where Element == UInt8 {
    public var redisArgument: [UInt8] { self }
}

extension Int: RedisArgumentConvertible {
    public var redisArgument: [UInt8] { Array(String(self).utf8) }
}

extension Int64: RedisArgumentConvertible {
    public var redisArgument: [UInt8] { Array(String(self).utf8) }
}

extension UInt64: RedisArgumentConvertible {
    public var redisArgument: [UInt8] { Array(String(self).utf8) }
}

/// One Redis command as an argument vector: the command name followed by its arguments.
///
/// ```swift
/// let set = RedisCommand("SET", key, value, "PX", 30_000)
/// ```
public struct RedisCommand: Sendable, Hashable {
    /// The arguments, the command name first.
    public var arguments: [[UInt8]]

    /// Builds a command from its name and arguments.
    public init(_ name: String, _ arguments: any RedisArgumentConvertible...) {
        self.init(name, arguments: arguments)
    }

    /// Builds a command from its name and an array of arguments.
    public init(_ name: String, arguments: [any RedisArgumentConvertible]) {
        self.arguments = [Array(name.utf8)] + arguments.map(\.redisArgument)
    }

    /// Builds a command from a raw argument vector whose first element is the command name.
    public init(rawArguments: [[UInt8]]) {
        precondition(!rawArguments.isEmpty, "a Redis command needs at least its name")
        self.arguments = rawArguments
    }

    /// The command name, upper-cased, for error messages and logs (never the arguments: they may be secrets).
    public var name: String {
        String(decoding: arguments.first ?? [], as: UTF8.self).uppercased()
    }
}
