/// A Prometheus counter family: a value per label set that only goes up.
///
/// ```swift
/// let refreshes = Counter(name: "baton_refresh_total", help: "Refresh attempts.", labelNames: ["service", "result"])
/// refreshes.increment("my-api", "refreshed")
/// let hot = refreshes.series("my-api", "busy")   // slot resolved once
/// hot.increment()                                // one lock, no allocation
/// ```
public final class Counter: MetricCollector {
    /// The family name.
    public let name: String
    /// The `# HELP` text.
    public let help: String
    private let storage: SeriesStorage<Double>

    /// Creates a family. Stops the process if a name breaks Prometheus's rules.
    public init(name: String, help: String, labelNames: [String] = []) {
        MetricNames.validate(name: name, labelNames: labelNames)
        self.name = name
        self.help = help
        self.storage = SeriesStorage(labelNames: labelNames, empty: 0)
    }

    /// One series (created at 0 on first use, so it is exported before its first increment).
    /// - Parameter labelValues: one value per label name, in the family's order.
    public func series(_ labelValues: String...) -> Series {
        Series(handle: SeriesHandle(storage: storage, slot: storage.slot(labelValues)))
    }

    /// Adds `amount` (≥ 0) to the series of `labelValues`.
    public func increment(_ labelValues: String..., by amount: Double = 1) {
        Series(handle: SeriesHandle(storage: storage, slot: storage.slot(labelValues))).increment(by: amount)
    }

    /// The current value of the series of `labelValues` (0 if it was never used).
    public func value(_ labelValues: String...) -> Double {
        storage.value(labelValues)
    }

    public func collect() -> [MetricFamilySnapshot] {
        [storage.snapshot(name: name, help: help, type: .counter)]
    }

    /// One series of the family, for a hot path.
    public struct Series: Sendable {
        let handle: SeriesHandle<Double>

        /// Adds `amount`; a negative amount is a programming error (counters never go down).
        public func increment(by amount: Double = 1) {
            precondition(amount >= 0, "a counter cannot decrease (increment by \(amount))")
            handle.storage.update(handle.slot) { $0 += amount }
        }
    }
}
