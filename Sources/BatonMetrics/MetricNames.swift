/// The rules of Prometheus's data model for names, checked when a family is created: a bad name
/// is a programming error, so it stops the process at once rather than at the first scrape.
enum MetricNames {
    /// `[a-zA-Z_:][a-zA-Z0-9_:]*`.
    static func isValidMetricName(_ name: String) -> Bool {
        isValid(name, allowingColon: true)
    }

    /// `[a-zA-Z_][a-zA-Z0-9_]*`, not starting with `__` (reserved for Prometheus's own use).
    static func isValidLabelName(_ name: String) -> Bool {
        isValid(name, allowingColon: false) && !name.hasPrefix("__")
    }

    /// Stops with a message naming the family when its name or label names break the rules.
    /// - Parameter reserved: label names the family type uses itself (`le` for histograms).
    static func validate(name: String, labelNames: [String], reserved: Set<String> = []) {
        precondition(isValidMetricName(name), "invalid metric name '\(name)'")
        for label in labelNames {
            precondition(isValidLabelName(label), "invalid label name '\(label)' in metric '\(name)'")
            precondition(!reserved.contains(label), "label name '\(label)' is reserved in metric '\(name)'")
        }
        precondition(Set(labelNames).count == labelNames.count, "duplicate label names in metric '\(name)'")
    }

    private static func isValid(_ name: String, allowingColon: Bool) -> Bool {
        func allowed(_ character: Character) -> Bool {
            character.isASCII && (character.isLetter || character == "_" || (allowingColon && character == ":"))
        }
        guard let first = name.first, allowed(first) else { return false }
        return name.allSatisfy { allowed($0) || ($0.isASCII && $0.isNumber) }
    }
}
