import Foundation

/// A test topology (TLS server, Sentinel group, cluster, test certificates) that could not be set
/// up, or did not reach a state in time. The message says what was expected, what was last seen,
/// and carries the end of each involved process's log, so a failing test explains itself.
public struct TopologyError: Error, CustomStringConvertible {
    /// The full message: what failed, then the logs.
    public let description: String

    /// How many lines of each log an error keeps (the last ones).
    public static let logLines = 60

    /// An error with `message` and the tail of each `(name, log)` in `logs`.
    public init(_ message: String, logs: [(name: String, log: String)] = []) {
        var text = message
        for (name, log) in logs {
            let lines = log.split(separator: "\n", omittingEmptySubsequences: false)
            let tail = lines.suffix(Self.logLines).joined(separator: "\n")
            let cut = lines.count > Self.logLines ? " (last \(Self.logLines) lines)" : ""
            text += "\n--- \(name) log\(cut):\n\(tail)"
        }
        description = text
    }
}

/// A condition not met yet, and why: thrown by the checks `waitUntil` repeats, and quoted in its
/// timeout error.
struct NotYet: Error, CustomStringConvertible {
    let description: String

    init(_ description: String) {
        self.description = description
    }
}

/// How often a wait checks its condition. The checks run `redis-cli`, so not much more often.
private let pollInterval = Duration.milliseconds(50)

/// Repeats `condition` until it returns instead of throwing (it throws ``NotYet`` or any error to
/// say why not), and returns its value. Sleeps between checks without blocking a thread.
/// - Throws: ``TopologyError`` after `timeout`, with `what`, the condition's last reason and
///   `logs()`; `CancellationError` when the task is cancelled.
func waitUntil<Value>(
    _ what: String, timeout: Duration, logs: () -> [(name: String, log: String)], _ condition: () throws -> Value
) async throws -> Value {
    let deadline = ContinuousClock.now + timeout
    while true {
        do {
            return try condition()
        } catch {
            guard ContinuousClock.now < deadline else {
                throw TopologyError("\(what): not within \(timeout). Last seen: \(error)", logs: logs())
            }
        }
        try await Task.sleep(for: pollInterval)
    }
}
