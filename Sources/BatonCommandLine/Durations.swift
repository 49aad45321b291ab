/// Parses a duration written with a unit: `250ms`, `30s`, `5m`, `1h` (a positive whole number then
/// the unit), as used on the command line and in the configuration file.
/// - Returns: `nil` when the text is not of that form.
public func parseDuration(_ text: String) -> Duration? {
    let digits = text.prefix { $0.isASCII && $0.isNumber }
    guard !digits.isEmpty, let amount = Int64(digits), amount > 0 else { return nil }
    switch text.dropFirst(digits.count) {
    case "ms": return .milliseconds(amount)
    case "s": return .seconds(amount)
    case "m": return .seconds(amount * 60)
    case "h": return .seconds(amount * 3600)
    default: return nil
    }
}
