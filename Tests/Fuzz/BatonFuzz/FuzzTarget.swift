/// One fuzz target: a name (also the folder of its seed corpus, `Tests/Fuzz/corpus/<name>/`)
/// and a function that feeds one input to a parser and checks what came out.
///
/// A target returns normally for every input the parser handles correctly, accepted or refused.
/// It throws ``PropertyViolation`` when a property that must hold for every input does not (a
/// re-encoded value that reparses differently, a secret in an error); a crash is a finding too.
struct FuzzTarget: Sendable {
    /// The target's name, as given to `BatonFuzz` and `BATON_FUZZ_TARGET`.
    let name: String
    /// What the target feeds, in one line (for `BatonFuzz --list`).
    let summary: String
    /// Runs one input.
    let run: @Sendable ([UInt8]) throws(PropertyViolation) -> Void

    /// Every target, in the order `make fuzz` runs them.
    static let all: [FuzzTarget] = [
        .jsonReader, .configuration, .tokenResponse, .refreshRequest, .tokenRecord, .redisURL,
    ]

    /// The target called `name`.
    static func named(_ name: String) -> FuzzTarget? {
        all.first { $0.name == name }
    }
}

/// A property of a parser that an input broke, with what was expected and what came out.
struct PropertyViolation: Error, CustomStringConvertible {
    let target: String
    let message: String

    var description: String { "\(target): \(message)" }
}
