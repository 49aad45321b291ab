/// The kind of a metric family, as its `# TYPE` line names it.
public enum MetricType: String, Sendable {
    /// A value that only goes up (resets when the process restarts).
    case counter
    /// A value that goes up and down.
    case gauge
    /// Observations counted into fixed buckets, with their sum and count.
    case histogram
}

/// One line of a family: a name (the family's, or with a histogram's `_bucket`, `_sum` or
/// `_count` suffix), label pairs in output order, and a value.
public struct MetricSample: Sendable, Equatable {
    /// The sample's name.
    public var name: String
    /// Label names and values, in the order they are written.
    public var labels: [(name: String, value: String)]
    /// The value.
    public var value: Double

    /// Creates a sample.
    public init(name: String, labels: [(name: String, value: String)] = [], value: Double) {
        self.name = name
        self.labels = labels
        self.value = value
    }

    public static func == (left: MetricSample, right: MetricSample) -> Bool {
        left.name == right.name && left.value == right.value && left.labels.elementsEqual(right.labels, by: ==)
    }
}

/// A metric family's state at one moment: what ``ExpositionFormat`` renders. Live families
/// (``Counter``, ``Gauge``, ``Histogram``) produce one under their lock; values computed at
/// scrape time (the Redis-state gauges) are built as snapshots directly.
public struct MetricFamilySnapshot: Sendable, Equatable {
    /// The family name (`baton_refresh_total`).
    public var name: String
    /// The `# HELP` text (escaped when rendered).
    public var help: String
    /// The `# TYPE`.
    public var type: MetricType
    /// The samples, in output order (``ExpositionFormat`` keeps it).
    public var samples: [MetricSample]

    /// Creates a snapshot.
    public init(name: String, help: String, type: MetricType, samples: [MetricSample]) {
        self.name = name
        self.help = help
        self.type = type
        self.samples = samples
    }
}

/// Anything that contributes families to a scrape: a live metric family, or a collector that reads
/// its values when asked (``ProcessMetrics``).
public protocol MetricCollector: Sendable {
    /// The families' current values.
    func collect() -> [MetricFamilySnapshot]
}
