/// The rules for the names that go into Redis keys, in one place: the lock and token key schemas
/// enforce them, and the configuration validator reports them.
public enum KeyNameRules {
    /// Why `name` cannot be a lock or service name, or `nil` when it can: 1-128 letters, digits,
    /// `-`, `_`, `.`, so that a name can never break out of its hash tag or smuggle in a glob
    /// character.
    /// - Parameter kind: how the name is called in the message ("lock name", "service name").
    public static func nameProblem(_ name: String, kind: String) -> String? {
        if name.isEmpty { return "a \(kind) cannot be empty" }
        if name.count > 128 { return "a \(kind) has at most 128 characters" }
        if let bad = name.first(where: { !($0.isASCII && ($0.isLetter || $0.isNumber || "-_.".contains($0))) }) {
            return "'\(bad)' is not allowed in a \(kind): use letters, digits, '-', '_' and '.'"
        }
        return nil
    }

    /// Why `prefix` cannot be a key prefix, or `nil` when it can: 1-64 letters, digits, `-`, `_`,
    /// `.` or `:` (no braces, which would move the hash tag).
    public static func prefixProblem(_ prefix: String) -> String? {
        guard !prefix.isEmpty, prefix.count <= 64,
            prefix.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || "-_.:".contains($0)) })
        else {
            return "a prefix is 1-64 letters, digits, '-', '_', '.' or ':'"
        }
        return nil
    }
}
