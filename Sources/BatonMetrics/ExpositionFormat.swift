/// Prometheus's text exposition format, version 0.0.4
/// (<https://prometheus.io/docs/instrumenting/exposition_formats/#text-based-format>).
///
/// Each family is written as `# HELP`, `# TYPE`, then its samples; families in name order, so that
/// two scrapes of the same state are byte for byte the same.
public enum ExpositionFormat {
    /// The `Content-Type` of a scrape answer.
    public static let contentType = "text/plain; version=0.0.4; charset=utf-8"

    /// The text of `families`, sorted by name. Two families with one name are a programming error.
    public static func render(_ families: [MetricFamilySnapshot]) -> String {
        let sorted = families.sorted { $0.name < $1.name }
        for (first, second) in zip(sorted, sorted.dropFirst()) {
            precondition(first.name != second.name, "metric family '\(first.name)' is exported twice")
        }
        var text = ""
        text.reserveCapacity(families.reduce(0) { $0 + 80 + $1.samples.count * 64 })
        for family in sorted {
            text += "# HELP \(family.name) \(escapeHelp(family.help))\n"
            text += "# TYPE \(family.name) \(family.type.rawValue)\n"
            for sample in family.samples {
                text += sample.name
                if !sample.labels.isEmpty {
                    text += "{"
                    for (index, label) in sample.labels.enumerated() {
                        if index > 0 { text += "," }
                        text += "\(label.name)=\"\(escapeLabelValue(label.value))\""
                    }
                    text += "}"
                }
                text += " \(number(sample.value))\n"
            }
        }
        return text
    }

    /// `# HELP` text: a backslash becomes `\\` and a line feed `\n`.
    public static func escapeHelp(_ text: String) -> String {
        escape(text, quotes: false)
    }

    /// A label value: a backslash becomes `\\`, a double quote `\"` and a line feed `\n`.
    public static func escapeLabelValue(_ text: String) -> String {
        escape(text, quotes: true)
    }

    /// A sample value as Go's `strconv.ParseFloat` reads it: `+Inf`, `-Inf`, `NaN`, whole numbers
    /// without a fraction (`3`, not `3.0`), and otherwise the shortest text that reads back exactly.
    public static func number(_ value: Double) -> String {
        if value.isNaN { return "NaN" }
        if value.isInfinite { return value > 0 ? "+Inf" : "-Inf" }
        if value == value.rounded(), abs(value) < 1e15 { return String(Int64(value)) }
        return "\(value)"
    }

    private static func escape(_ text: String, quotes: Bool) -> String {
        guard text.contains(where: { $0 == "\\" || $0 == "\n" || (quotes && $0 == "\"") }) else { return text }
        var escaped = ""
        for character in text {
            switch character {
            case "\\": escaped += "\\\\"
            case "\n": escaped += "\\n"
            case "\"" where quotes: escaped += "\\\""
            default: escaped.append(character)
            }
        }
        return escaped
    }
}
