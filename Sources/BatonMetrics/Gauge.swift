/// A Prometheus gauge family: a value per label set that goes up and down.
public final class Gauge: MetricCollector {
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

    /// One series (created at 0 on first use).
    public func series(_ labelValues: String...) -> Series {
        Series(handle: SeriesHandle(storage: storage, slot: storage.slot(labelValues)))
    }

    /// Sets the series of `labelValues` to `value`.
    public func set(_ value: Double, _ labelValues: String...) {
        let slot = storage.slot(labelValues)
        storage.update(slot) { $0 = value }
    }

    /// The current value of the series of `labelValues` (0 if it was never used).
    public func value(_ labelValues: String...) -> Double {
        storage.value(labelValues)
    }

    public func collect() -> [MetricFamilySnapshot] {
        [storage.snapshot(name: name, help: help, type: .gauge)]
    }

    /// One series of the family, for a hot path.
    public struct Series: Sendable {
        let handle: SeriesHandle<Double>

        /// Sets the value.
        public func set(_ value: Double) {
            handle.storage.update(handle.slot) { $0 = value }
        }

        /// Adds `amount` (negative to subtract).
        public func add(_ amount: Double) {
            handle.storage.update(handle.slot) { $0 += amount }
        }
    }
}
