import Foundation

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// How `baton` shows times and durations to people: every such format of the command line, in
/// one place. (Machine-readable output, `--json`, keeps raw milliseconds.)
public enum DisplayFormat {
    /// A time span for a person: `950ms`, `42s`, `3m10s`, `2h5m` (truncated, not rounded).
    public static func age(milliseconds: Int64) -> String {
        if milliseconds < 1000 { return "\(milliseconds)ms" }
        let seconds = milliseconds / 1000
        if seconds < 60 { return "\(seconds)s" }
        if seconds < 3600 { return "\(seconds / 60)m\(seconds % 60)s" }
        return "\(seconds / 3600)h\((seconds % 3600) / 60)m"
    }

    /// ``age(milliseconds:)`` with a leading `-` for a span in the past (`-42s`).
    public static func signedAge(milliseconds: Int64) -> String {
        milliseconds >= 0 ? age(milliseconds: milliseconds) : "-" + age(milliseconds: -milliseconds)
    }

    /// A measured latency in milliseconds with three decimals: `0.123 ms`, right-aligned in
    /// `width` characters before the unit when given (`  0.123 ms`), for columns of figures.
    public static func milliseconds(_ duration: Duration, width: Int = 0) -> String {
        String(format: "%\(width > 0 ? String(width) : "").3f ms", duration / .milliseconds(1))
    }

    /// A ratio with two decimals: `1.07`.
    public static func ratio(_ value: Double) -> String {
        String(format: "%.2f", value)
    }

    /// The local wall-clock time with milliseconds, `HH:mm:ss.SSS` (`14:03:27.045`), for live
    /// feeds; no formatter object, so it is cheap on every line.
    public static func clockTime(_ date: Date = Date()) -> String {
        // Whole milliseconds first (rounded, as DateFormatter does), then split: a fraction such as
        // .8219999 is 822 ms, never 821.
        let milliseconds = Int64((date.timeIntervalSince1970 * 1000).rounded())
        var whole = time_t(milliseconds.dividedRoundingDown(by: 1000))
        let millisecond = Int(milliseconds - Int64(whole) * 1000)
        var parts = tm()
        localtime_r(&whole, &parts)
        return String(format: "%02d:%02d:%02d.%03d", parts.tm_hour, parts.tm_min, parts.tm_sec, millisecond)
    }

    /// `text` padded with spaces to `width` characters, always followed by at least one space:
    /// a column of a plain-text table.
    public static func column(_ text: String, width: Int) -> String {
        text.count >= width ? text + " " : text + String(repeating: " ", count: width - text.count)
    }
}

private extension Int64 {
    /// Floor division (the remainder is never negative), for times before 1970 too.
    func dividedRoundingDown(by divisor: Int64) -> Int64 {
        let quotient = self / divisor
        return (self % divisor < 0) ? quotient - 1 : quotient
    }
}
