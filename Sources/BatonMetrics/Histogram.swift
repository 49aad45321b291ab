import BatonSupport

/// A Prometheus histogram family: observations counted into fixed buckets, exported as cumulative
/// `_bucket{le="…"}` series (the last `le="+Inf"`, equal to `_count`), `_sum` and `_count`.
public final class Histogram: MetricCollector {
    /// Bucket bounds in seconds for latencies from a Redis round trip to a slow token endpoint:
    /// 0.5 ms to 30 s.
    public static let latencyBuckets: [Double] = [
        0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30,
    ]

    /// The family name (`_bucket`, `_sum` and `_count` are appended).
    public let name: String
    /// The `# HELP` text.
    public let help: String
    /// The finite upper bounds, ascending; `+Inf` is implicit.
    public let bounds: [Double]
    private let storage: SeriesStorage<Cell>

    /// One series' state: counts per bucket (not cumulative; the last is the `+Inf` overflow).
    struct Cell: Sendable {
        var counts: [UInt64]
        var sum: Double = 0
        var count: UInt64 = 0
    }

    /// Creates a family. Stops the process if a name breaks Prometheus's rules, a label is named
    /// `le`, or `bounds` is empty, not ascending, or holds a non-finite value.
    public init(name: String, help: String, labelNames: [String] = [], bounds: [Double] = Histogram.latencyBuckets) {
        MetricNames.validate(name: name, labelNames: labelNames, reserved: ["le"])
        precondition(!bounds.isEmpty && bounds.allSatisfy(\.isFinite), "histogram '\(name)' needs finite bucket bounds")
        precondition(zip(bounds, bounds.dropFirst()).allSatisfy { $0 < $1 }, "histogram '\(name)' bounds must ascend")
        self.name = name
        self.help = help
        self.bounds = bounds
        self.storage = SeriesStorage(
            labelNames: labelNames, empty: Cell(counts: Array(repeating: 0, count: bounds.count + 1)))
    }

    /// One series (created empty on first use).
    public func series(_ labelValues: String...) -> Series {
        Series(handle: SeriesHandle(storage: storage, slot: storage.slot(labelValues)), bounds: bounds)
    }

    /// Records `value` in the series of `labelValues`.
    public func observe(_ value: Double, _ labelValues: String...) {
        Series(handle: SeriesHandle(storage: storage, slot: storage.slot(labelValues)), bounds: bounds).observe(value)
    }

    /// Records a duration, in seconds, in the series of `labelValues`.
    public func observe(_ duration: Duration, _ labelValues: String...) {
        Series(handle: SeriesHandle(storage: storage, slot: storage.slot(labelValues)), bounds: bounds)
            .observe(duration)
    }

    /// The number of observations in the series of `labelValues` (0 if it was never used).
    public func count(_ labelValues: String...) -> UInt64 {
        storage.entries().first { $0.labels.map(\.value) == labelValues }?.cell.count ?? 0
    }

    public func collect() -> [MetricFamilySnapshot] {
        var samples: [MetricSample] = []
        for (labels, cell) in storage.entries() {
            var cumulative: UInt64 = 0
            for (index, count) in cell.counts.enumerated() {
                cumulative += count
                let bound = index < bounds.count ? ExpositionFormat.number(bounds[index]) : "+Inf"
                samples.append(
                    MetricSample(name: name + "_bucket", labels: labels + [("le", bound)], value: Double(cumulative)))
            }
            samples.append(MetricSample(name: name + "_sum", labels: labels, value: cell.sum))
            samples.append(MetricSample(name: name + "_count", labels: labels, value: Double(cell.count)))
        }
        return [MetricFamilySnapshot(name: name, help: help, type: .histogram, samples: samples)]
    }

    /// One series of the family, for a hot path.
    public struct Series: Sendable {
        let handle: SeriesHandle<Cell>
        let bounds: [Double]

        /// Records `value`: one lock, one bucket search, no allocation. NaN is ignored (it has no
        /// bucket and would poison `_sum`).
        public func observe(_ value: Double) {
            guard !value.isNaN else { return }
            let bucket = bounds.firstIndex { value <= $0 } ?? bounds.count
            handle.storage.update(handle.slot) { cell in
                cell.counts[bucket] += 1
                cell.sum += value
                cell.count += 1
            }
        }

        /// Records a duration in seconds.
        public func observe(_ duration: Duration) {
            observe(duration.seconds)
        }
    }
}
