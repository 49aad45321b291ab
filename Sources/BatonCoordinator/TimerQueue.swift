/// A priority queue of keys ordered by due time, where each key appears at most once: scheduling
/// a key again moves it. An indexed binary heap: schedule, remove and pop are O(log n), peeking
/// at the next due time is O(1).
///
/// This is the coordinator's one scheduler: 10,000 services are 10,000 entries here, not 10,000
/// tasks or timers.
public struct TimerQueue<Key: Hashable>: Sendable where Key: Sendable {
    private struct Entry: Sendable {
        var due: Int64
        var sequence: UInt64
        var key: Key
    }

    private var heap: [Entry] = []
    private var positions: [Key: Int] = [:]
    private var sequence: UInt64 = 0

    /// Creates an empty queue.
    public init() {}

    /// How many keys are scheduled.
    public var count: Int { heap.count }

    /// Whether nothing is scheduled.
    public var isEmpty: Bool { heap.isEmpty }

    /// The earliest due time and its key.
    public var next: (key: Key, due: Int64)? { heap.first.map { ($0.key, $0.due) } }

    /// When `key` is due, if scheduled.
    public func due(_ key: Key) -> Int64? { positions[key].map { heap[$0].due } }

    /// Schedules `key` at `due` (ms), replacing any earlier schedule of it. Keys due at the same
    /// time come out in the order they were scheduled.
    public mutating func schedule(_ key: Key, at due: Int64) {
        sequence &+= 1
        if let index = positions[key] {
            heap[index].due = due
            heap[index].sequence = sequence
            siftUp(siftDown(index))
        } else {
            heap.append(Entry(due: due, sequence: sequence, key: key))
            positions[key] = heap.count - 1
            siftUp(heap.count - 1)
        }
    }

    /// Unschedules `key`.
    /// - Returns: whether it was scheduled.
    @discardableResult
    public mutating func remove(_ key: Key) -> Bool {
        guard let index = positions[key] else { return false }
        swapAt(index, heap.count - 1)
        heap.removeLast()
        positions[key] = nil
        if index < heap.count { siftUp(siftDown(index)) }
        return true
    }

    /// Removes and returns every key due at or before `now`, earliest first.
    public mutating func popDue(at now: Int64, limit: Int = .max) -> [Key] {
        var due: [Key] = []
        while due.count < limit, let first = heap.first, first.due <= now {
            due.append(first.key)
            remove(first.key)
        }
        return due
    }

    private func isBefore(_ a: Int, _ b: Int) -> Bool {
        heap[a].due != heap[b].due ? heap[a].due < heap[b].due : heap[a].sequence < heap[b].sequence
    }

    private mutating func swapAt(_ a: Int, _ b: Int) {
        guard a != b else { return }
        heap.swapAt(a, b)
        positions[heap[a].key] = a
        positions[heap[b].key] = b
    }

    @discardableResult
    private mutating func siftUp(_ start: Int) -> Int {
        var child = start
        while child > 0 {
            let parent = (child - 1) / 2
            guard isBefore(child, parent) else { break }
            swapAt(child, parent)
            child = parent
        }
        return child
    }

    private mutating func siftDown(_ start: Int) -> Int {
        var parent = start
        while true {
            let left = 2 * parent + 1
            let right = left + 1
            var first = parent
            if left < heap.count && isBefore(left, first) { first = left }
            if right < heap.count && isBefore(right, first) { first = right }
            if first == parent { return parent }
            swapAt(parent, first)
            parent = first
        }
    }
}
