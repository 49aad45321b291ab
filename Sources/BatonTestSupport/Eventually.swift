import XCTest

/// A wait condition for tests that watch real processes: checks `condition` every 20 ms until it
/// holds, and fails the test with `what` and `diagnostics()` (a log dump) when it does not within
/// `timeout`. Use a generous timeout: it costs nothing when things go well, and machines under
/// load are slow.
/// - Returns: the first non-`nil` value `condition` produced.
/// - Throws: `CancellationError` after failing the test, so the caller stops there.
@discardableResult
public func eventually<Value>(
    _ what: String, timeout: Duration = .seconds(15), diagnostics: () -> String = { "" },
    file: StaticString = #filePath, line: UInt = #line, _ condition: () async throws -> Value?
) async throws -> Value {
    let deadline = ContinuousClock.now + timeout
    while ContinuousClock.now < deadline {
        if let value = try await condition() { return value }
        try await Task.sleep(for: .milliseconds(20))
    }
    XCTFail("\(what): not within \(timeout)\n\(diagnostics())", file: file, line: line)
    throw CancellationError()
}

/// ``eventually(_:timeout:diagnostics:file:line:_:)`` for a condition that is true or false.
public func eventually(
    _ what: String, timeout: Duration = .seconds(15), diagnostics: () -> String = { "" },
    file: StaticString = #filePath, line: UInt = #line, _ condition: () async throws -> Bool
) async throws {
    try await eventually(what, timeout: timeout, diagnostics: diagnostics, file: file, line: line) {
        try await condition() ? () : nil
    }
}
