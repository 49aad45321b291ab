import BatonSupport

/// The series of one metric family under one lock: each distinct list of label values gets a slot
/// (an index) the first time it is used, and keeps it. A ``SeriesHandle`` remembers its slot, so an
/// update through it is one lock and an in-place change, with no allocation and no hashing.
final class SeriesStorage<Cell: Sendable>: Sendable {
    private struct State: Sendable {
        var slots: [[String]: Int] = [:]
        var labelValues: [[String]] = []
        var cells: [Cell] = []
    }

    let labelNames: [String]
    private let empty: Cell
    private let state = LockedBox(State())

    init(labelNames: [String], empty: Cell) {
        self.labelNames = labelNames
        self.empty = empty
    }

    /// The slot of `labelValues`, created on first use.
    func slot(_ labelValues: [String]) -> Int {
        precondition(
            labelValues.count == labelNames.count,
            "\(labelValues.count) label values given for the \(labelNames.count) labels \(labelNames)")
        return state.withLockedValue { state in
            if let slot = state.slots[labelValues] { return slot }
            let slot = state.cells.count
            state.slots[labelValues] = slot
            state.labelValues.append(labelValues)
            state.cells.append(empty)
            return slot
        }
    }

    /// Changes the cell in `slot` in place.
    func update(_ slot: Int, _ body: (inout Cell) -> Void) {
        state.withLockedValue { body(&$0.cells[slot]) }
    }

    /// Every series: label pairs (in label-name order) and cell, ordered by label values so that
    /// a scrape's output does not depend on the order series were first used.
    func entries() -> [(labels: [(name: String, value: String)], cell: Cell)] {
        let (values, cells) = state.withLockedValue { ($0.labelValues, $0.cells) }
        return zip(values, cells)
            .sorted { $0.0.lexicographicallyPrecedes($1.0) }
            .map { pair in (Array(zip(labelNames, pair.0)).map { (name: $0.0, value: $0.1) }, pair.1) }
    }
}

extension SeriesStorage where Cell == Double {
    /// The value of the series of `labelValues`, 0 if it was never used (counters and gauges).
    func value(_ labelValues: [String]) -> Double {
        entries().first { $0.labels.map(\.value) == labelValues }?.cell ?? 0
    }

    /// The family as one snapshot of plain samples (counters and gauges).
    func snapshot(name: String, help: String, type: MetricType) -> MetricFamilySnapshot {
        let samples = entries().map { MetricSample(name: name, labels: $0.labels, value: $0.cell) }
        return MetricFamilySnapshot(name: name, help: help, type: type, samples: samples)
    }
}

/// One series of a family, its slot resolved once: keep it for a hot path.
public struct SeriesHandle<Cell: Sendable>: Sendable {
    let storage: SeriesStorage<Cell>
    let slot: Int
}
