// @unchecked: no lock; the code that uses it guarantees exclusive, ordered access.
/// Moves a value across a thread boundary where the code guarantees exclusive, ordered access.
final class UncheckedBox<Value>: @unchecked Sendable {
    var value: Value
    init(_ value: Value) { self.value = value }
}
