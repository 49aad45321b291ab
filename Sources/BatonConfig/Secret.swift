/// A secret read from the environment or a file. It never prints: `description` and
/// `debugDescription` are `<redacted>`, and it is not `Codable`.
public struct Secret: Sendable, Hashable, CustomStringConvertible, CustomDebugStringConvertible {
    private let value: String

    /// Wraps a secret value.
    public init(_ value: String) { self.value = value }

    /// The secret itself, for the one place that must send it (the token request).
    public func reveal() -> String { value }

    public var description: String { "<redacted>" }
    public var debugDescription: String { "<redacted>" }
}
