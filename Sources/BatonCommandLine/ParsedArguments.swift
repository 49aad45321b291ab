import BatonSupport

/// A command line's words sorted into positionals, options with values, flags, and what follows
/// `--`, checked against what a subcommand accepts.
///
/// Strict on purpose: an unknown option, a missing value or a stray positional is an error that
/// names the bad word, never silently ignored. Accepts `--name value`, `--name=value`, `-h`.
public struct ParsedArguments: Sendable, Equatable {
    /// Positional words, in order.
    public private(set) var positionals: [String] = []
    /// Options that take a value, by name without dashes; the last occurrence wins.
    public private(set) var values: [String: String] = [:]
    /// Flags that were given, by name without dashes.
    public private(set) var flags: Set<String> = []
    /// Everything after a `--` separator (for `baton lock run NAME -- CMD ARGS...`).
    public private(set) var trailing: [String]?

    /// What a subcommand accepts.
    public struct Specification: Sendable {
        /// Options that take a value (`--ttl 30s`), names without dashes.
        public var valueOptions: Set<String>
        /// Boolean flags (`--force`), names without dashes.
        public var flags: Set<String>
        /// How many positionals are required and allowed.
        public var positionals: ClosedRange<Int>
        /// Whether a `-- command...` tail is accepted (and required).
        public var takesTrailingCommand: Bool

        /// Creates a specification. `--help`/`-h` is always accepted as a flag named `help`.
        public init(
            valueOptions: Set<String> = [], flags: Set<String> = [], positionals: ClosedRange<Int> = 0...0,
            takesTrailingCommand: Bool = false
        ) {
            self.valueOptions = valueOptions
            self.flags = flags.union(["help"])
            self.positionals = positionals
            self.takesTrailingCommand = takesTrailingCommand
        }
    }

    /// Parses `arguments` (without the program and subcommand names) against `specification`.
    /// - Throws: ``UsageError`` naming the offending word. `--help` skips the positional count check.
    public init(_ arguments: [String], specification: Specification) throws {
        var index = 0
        while index < arguments.count {
            let word = arguments[index]
            index += 1
            if word == "--" {
                guard specification.takesTrailingCommand else {
                    throw UsageError("unexpected '--': this command does not run another command")
                }
                trailing = Array(arguments[index...])
                break
            }
            if word == "-h" {
                flags.insert("help")
                continue
            }
            guard word.hasPrefix("--"), word.count > 2 else {
                if word.hasPrefix("-") && word.count > 1 && Double(word) == nil {
                    throw UsageError("unknown option '\(word)'\(Self.suggestion(for: word, in: specification))")
                }
                positionals.append(word)
                continue
            }
            var name = String(word.dropFirst(2))
            var inlineValue: String?
            if let equals = name.firstIndex(of: "=") {
                inlineValue = String(name[name.index(after: equals)...])
                name = String(name[..<equals])
            }
            if specification.flags.contains(name) {
                guard inlineValue == nil else { throw UsageError("--\(name) is a flag and takes no value") }
                flags.insert(name)
            } else if specification.valueOptions.contains(name) {
                if let inlineValue {
                    values[name] = inlineValue
                } else {
                    guard index < arguments.count, !arguments[index].hasPrefix("--") else {
                        throw UsageError("--\(name) needs a value")
                    }
                    values[name] = arguments[index]
                    index += 1
                }
            } else {
                throw UsageError("unknown option '--\(name)'\(Self.suggestion(for: name, in: specification))")
            }
        }
        if flags.contains("help") { return }
        let range = specification.positionals
        if positionals.count < range.lowerBound {
            throw UsageError(
                range.lowerBound == 1
                    ? "missing argument" : "expected at least \(range.lowerBound) arguments, got \(positionals.count)")
        }
        if positionals.count > range.upperBound {
            throw UsageError("unexpected argument '\(positionals[range.upperBound])'")
        }
        if specification.takesTrailingCommand && (trailing?.isEmpty ?? true) {
            throw UsageError("missing the command to run after '--'")
        }
    }

    /// Whether `--name` was given.
    public func has(_ flag: String) -> Bool { flags.contains(flag) }

    /// The value of `--name`, if given.
    public func value(_ name: String) -> String? { values[name] }

    private static func suggestion(for word: String, in specification: Specification) -> String {
        let bare = word.drop { $0 == "-" }
        let known = specification.valueOptions.union(specification.flags)
        guard let nearest = known.min(by: { editDistance(bare, $0) < editDistance(bare, $1) }),
            editDistance(bare, nearest) <= max(2, nearest.count / 3)
        else { return "" }
        return "; did you mean '--\(nearest)'?"
    }
}

/// A mistake on the command line; the message names the bad input and the fix.
public struct UsageError: Error, CustomStringConvertible, Equatable {
    /// What is wrong.
    public let message: String
    /// Creates an error with its message.
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}
