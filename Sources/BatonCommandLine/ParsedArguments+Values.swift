import BatonSupport

extension ParsedArguments {
    /// The duration given as `--name` (`250ms`, `30s`, `5m`, `1h`), or `value` when absent.
    /// - Throws: ``UsageError`` quoting the text and showing the accepted form.
    public func duration(_ name: String, default value: Duration) throws -> Duration {
        guard let text = self.value(name) else { return value }
        guard let duration = parseDuration(text) else {
            throw UsageError(
                "--\(name) '\(text)' is not a duration: write a whole number and a unit, as in 250ms, 30s, 5m, 1h")
        }
        return duration
    }

    /// The whole number given as `--name` (positive, or also 0 with `allowZero`), or `value`
    /// when absent.
    /// - Throws: ``UsageError`` quoting the text.
    public func count(_ name: String, default value: Int, allowZero: Bool = false) throws -> Int {
        guard let text = self.value(name) else { return value }
        guard let number = Int(text), number > 0 || (allowZero && number == 0) else {
            throw UsageError(
                "--\(name) must be a \(allowZero ? "non-negative" : "positive") whole number, not '\(text)'")
        }
        return number
    }
}
