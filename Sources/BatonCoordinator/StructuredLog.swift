import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// One JSON object per line on standard error: `time`, `level`, `replica`, `event`, and whatever
/// fields apply (`service`, `version`, `duration_ms`, `error_class`, `message`).
///
/// Callers pass only non-secret values; the log has no way to print a token because it is never
/// given one (records and envelopes are not loggable types here).
public struct StructuredLog: Sendable {
    /// Severity.
    public enum Level: String, Sendable { case debug, info, warn, error }

    /// A field value: text or a number.
    public enum Value: Sendable, Equatable {
        case text(String)
        case number(Int64)
    }

    /// The replica id written on every line.
    public let replica: String
    /// The lowest level written. Default: `info`.
    public let minimum: Level
    private let sink: @Sendable (String) -> Void

    /// Creates a log writing to standard error, or to `sink` (tests).
    public init(replica: String, minimum: Level = .info, sink: (@Sendable (String) -> Void)? = nil) {
        self.replica = replica
        self.minimum = minimum
        self.sink =
            sink ?? { line in
                let bytes = Array((line + "\n").utf8)
                _ = bytes.withUnsafeBytes { write(2, $0.baseAddress, $0.count) }
            }
    }

    /// Writes one line.
    public func log(_ level: Level, _ event: String, service: String? = nil, _ fields: [String: Value] = [:]) {
        guard Self.rank(level) >= Self.rank(minimum) else { return }
        var object: [(String, Value)] = [
            ("time", .text(Self.timestamp())), ("level", .text(level.rawValue)), ("replica", .text(replica)),
            ("event", .text(event)),
        ]
        if let service { object.append(("service", .text(service))) }
        object += fields.sorted { $0.key < $1.key }.map { ($0.key, $0.value) }
        sink("{" + object.map { "\(Self.quote($0.0)):\(Self.render($0.1))" }.joined(separator: ",") + "}")
    }

    private static func rank(_ level: Level) -> Int {
        switch level {
        case .debug: 0
        case .info: 1
        case .warn: 2
        case .error: 3
        }
    }

    private static func render(_ value: Value) -> String {
        switch value {
        case .text(let text): return quote(text)
        case .number(let number): return String(number)
        }
    }

    /// JSON string quoting (RFC 8259): quotes, backslashes and control characters escaped.
    static func quote(_ text: String) -> String {
        var out = "\""
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            case _ where scalar.value < 0x20: out += String(format: "\\u%04x", scalar.value)
            default: out.unicodeScalars.append(scalar)
            }
        }
        return out + "\""
    }

    private static func timestamp() -> String {
        var now = timespec()
        clock_gettime(CLOCK_REALTIME, &now)
        var seconds = now.tv_sec
        var parts = tm()
        gmtime_r(&seconds, &parts)
        return String(
            format: "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", parts.tm_year + 1900, parts.tm_mon + 1, parts.tm_mday,
            parts.tm_hour, parts.tm_min, parts.tm_sec, now.tv_nsec / 1_000_000)
    }
}
