// Durations as Baton reads and writes them: the configuration file and command line (`250ms`,
// `30s`, `5m`, `1h`), messages (`1.5s`), and the numbers C APIs and JSON want.

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
    /// `250ms`, `1.5s`: compact, for messages.
    public var shortDescription: String {
        let (seconds, attoseconds) = components
        let milliseconds = Double(seconds) * 1000 + Double(attoseconds) / 1e15
        if milliseconds < 1000 { return "\(Int(milliseconds.rounded()))ms" }
        let secondsValue = milliseconds / 1000
        return secondsValue == secondsValue.rounded()
            ? "\(Int(secondsValue))s"
            : "\((secondsValue * 10).rounded() / 10)s"
    }

    /// The duration in (fractional) seconds.
    public var seconds: Double {
        let (seconds, attoseconds) = components
        return Double(seconds) + Double(attoseconds) / 1e18
    }

    /// The duration in whole milliseconds, rounded down.
    public var milliseconds: Int64 {
        let (seconds, attoseconds) = components
        return seconds * 1000 + attoseconds / 1_000_000_000_000_000
    }

    /// The duration written the way the configuration file writes it (`250ms`, `45s`, `5m`, `1h`),
    /// in the largest unit that divides it exactly.
    public var configurationText: String {
        let milliseconds = self.milliseconds
        if milliseconds % 3_600_000 == 0 && milliseconds > 0 { return "\(milliseconds / 3_600_000)h" }
        if milliseconds % 60_000 == 0 && milliseconds > 0 { return "\(milliseconds / 60_000)m" }
        if milliseconds % 1000 == 0 { return "\(milliseconds / 1000)s" }
        return "\(milliseconds)ms"
    }
}
