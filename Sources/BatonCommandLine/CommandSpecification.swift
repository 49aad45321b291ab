/// One option a command accepts, written the way its help writes it: `--ttl 30s`, `--force`.
public struct OptionSpecification: Sendable, Hashable {
    /// The name without dashes (`ttl`).
    public let name: String
    /// What the help shows as its value (`30s`, `URL`); `nil` for a flag.
    public let placeholder: String?

    /// An option that takes a value, shown as `--name placeholder`.
    public static func value(_ name: String, _ placeholder: String) -> OptionSpecification {
        OptionSpecification(name: name, placeholder: placeholder)
    }

    /// A flag, shown as `--name`.
    public static func flag(_ name: String) -> OptionSpecification {
        OptionSpecification(name: name, placeholder: nil)
    }

    /// `--name placeholder`, or `--name` for a flag.
    public var usage: String { placeholder.map { "--\(name) \($0)" } ?? "--\(name)" }
    /// `[--name placeholder]`: the option as an optional part of a usage line.
    public var synopsis: String { "[\(usage)]" }
}

/// Options declared once and shared by several commands, as swift-argument-parser's
/// `@OptionGroup` does: each command that includes the group accepts its options and shows
/// ``synopsis`` in its usage line.
public struct OptionGroup: Sendable {
    /// The options, in the order the help shows them.
    public let options: [OptionSpecification]
    /// The group as a usage line shows it; by default each option as `[--name VALUE]`.
    public let synopsis: String

    /// Creates a group; `synopsis` defaults to every option shown as optional, in order.
    public init(_ options: [OptionSpecification], synopsis: String? = nil) {
        self.options = options
        self.synopsis = synopsis ?? options.map(\.synopsis).joined(separator: " ")
    }
}

/// What a command accepts and what its `--help` prints, in one value: parsing uses the options
/// declared here, and the usage lines of the help are checked against them by a test, so an
/// option cannot be accepted without being documented, or documented without being accepted.
public struct CommandSpecification: Sendable {
    /// The command words after `baton` (`lock status`).
    public let name: String
    /// This command's usage lines (`baton lock status NAME [--json]`), each one part of ``help``.
    /// Every option they name is accepted, and every accepted option is named in one of them.
    public let usage: [String]
    /// The command's own options (without its groups').
    public let options: [OptionSpecification]
    /// Shared option groups it includes.
    public let groups: [OptionGroup]
    /// How many positionals are required and allowed.
    public let positionals: ClosedRange<Int>
    /// Whether a `-- command...` tail is required.
    public let takesTrailingCommand: Bool
    /// The text `--help` prints.
    public let help: String

    /// A specification whose help is its usage lines (`usage: ...`) followed by `discussion`.
    public init(
        name: String, usage: [String], options: [OptionSpecification] = [], groups: [OptionGroup] = [],
        positionals: ClosedRange<Int> = 0...0, takesTrailingCommand: Bool = false, discussion: String
    ) {
        self.init(
            name: name, usage: usage, options: options, groups: groups, positionals: positionals,
            takesTrailingCommand: takesTrailingCommand, help: Self.helpText(usage: usage, discussion: discussion))
    }

    /// A specification that prints `help`, a text several commands share (`baton lock ...`);
    /// `usage` must still be part of it.
    public init(
        name: String, usage: [String], options: [OptionSpecification] = [], groups: [OptionGroup] = [],
        positionals: ClosedRange<Int> = 0...0, takesTrailingCommand: Bool = false, help: String
    ) {
        self.name = name
        self.usage = usage
        self.options = options
        self.groups = groups
        self.positionals = positionals
        self.takesTrailingCommand = takesTrailingCommand
        self.help = help
    }

    /// `usage: LINE` (further lines aligned under the first), a blank line, then `discussion`.
    public static func helpText(usage: [String], discussion: String) -> String {
        "usage: " + usage.joined(separator: "\n       ") + "\n\n" + discussion
    }

    /// Every option the command accepts: its groups' then its own.
    public var acceptedOptions: [OptionSpecification] { groups.flatMap(\.options) + options }

    /// What ``ParsedArguments`` checks the words against.
    public var parsing: ParsedArguments.Specification {
        let accepted = acceptedOptions
        return ParsedArguments.Specification(
            valueOptions: Set(accepted.filter { $0.placeholder != nil }.map(\.name)),
            flags: Set(accepted.filter { $0.placeholder == nil }.map(\.name)),
            positionals: positionals, takesTrailingCommand: takesTrailingCommand)
    }

    /// Parses the words after the command name.
    /// - Throws: ``UsageError`` naming the offending word.
    public func parse(_ words: [String]) throws -> ParsedArguments {
        try ParsedArguments(words, specification: parsing)
    }

    /// Parses the words after the command name, or, when they ask for help (`--help`, `-h`),
    /// prints `help` (default: this command's ``help``) and returns `nil`: the command then exits 0.
    /// - Throws: ``UsageError`` naming the offending word.
    public func parseUnlessHelp(_ words: [String], help: String? = nil) throws -> ParsedArguments? {
        let arguments = try parse(words)
        guard arguments.has("help") else { return arguments }
        Terminal.out(help ?? self.help)
        return nil
    }

    /// The option names (without dashes) that `text` mentions as `--name`.
    public static func optionNames(in text: String) -> Set<String> {
        var names: Set<String> = []
        var rest = Substring(text)
        while let range = rest.range(of: "--") {
            let tail = rest[range.upperBound...]
            let name = tail.prefix { $0.isASCII && ($0.isLowercase || $0.isNumber || $0 == "-") }
            if let first = name.first, first.isLowercase { names.insert(String(name)) }
            rest = tail.dropFirst(name.count)
        }
        return names
    }
}
