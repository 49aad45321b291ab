/// Parses a duration written with a unit: `250ms`, `30s`, `5m`, `1h` (a positive whole number then
/// the unit), as used in the configuration file and on the command line.
/// - Returns: `nil` when the text is not of that form.
public func parseDuration(_ text: String) -> Duration? {
    let digits = text.prefix { $0.isASCII && $0.isNumber }
    guard !digits.isEmpty, digits.count <= 12, let amount = Int64(digits), amount > 0 else { return nil }
    switch text.dropFirst(digits.count) {
    case "ms": return .milliseconds(amount)
    case "s": return .seconds(amount)
    case "m": return .seconds(amount * 60)
    case "h": return .seconds(amount * 3600)
    default: return nil
    }
}

extension Duration {
    /// The duration written the way the configuration file writes it (`250ms`, `45s`, `5m`, `1h`),
    /// in the largest unit that divides it exactly.
    public var configurationText: String {
        let (seconds, attoseconds) = components
        let milliseconds = seconds * 1000 + attoseconds / 1_000_000_000_000_000
        if milliseconds % 3_600_000 == 0 && milliseconds > 0 { return "\(milliseconds / 3_600_000)h" }
        if milliseconds % 60_000 == 0 && milliseconds > 0 { return "\(milliseconds / 60_000)m" }
        if milliseconds % 1000 == 0 { return "\(milliseconds / 1000)s" }
        return "\(milliseconds)ms"
    }
}
