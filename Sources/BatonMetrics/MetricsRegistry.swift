import BatonSupport

/// The metrics one process exports: collectors registered once, rendered on every scrape.
public final class MetricsRegistry: Sendable {
    private let collectors = LockedBox<[any MetricCollector]>([])

    /// Creates an empty registry.
    public init() {}

    /// Adds `collector` to every later scrape and returns it.
    @discardableResult
    public func register<Collector: MetricCollector>(_ collector: Collector) -> Collector {
        collectors.withLockedValue { $0.append(collector) }
        return collector
    }

    /// Every registered family's current values, followed by `extra` (values computed for this
    /// scrape).
    public func collect(adding extra: [MetricFamilySnapshot] = []) -> [MetricFamilySnapshot] {
        collectors.withLockedValue { $0 }.flatMap { $0.collect() } + extra
    }

    /// The scrape text (``ExpositionFormat``) of every registered family and `extra`.
    public func exposition(adding extra: [MetricFamilySnapshot] = []) -> String {
        ExpositionFormat.render(collect(adding: extra))
    }
}
