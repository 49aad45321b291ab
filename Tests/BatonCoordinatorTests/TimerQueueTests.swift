import XCTest

@testable import BatonCoordinator

final class TimerQueueTests: XCTestCase {
    func testOrderRescheduleAndRemove() {
        var queue = TimerQueue<String>()
        queue.schedule("c", at: 30)
        queue.schedule("a", at: 10)
        queue.schedule("b", at: 20)
        XCTAssertEqual(queue.next?.key, "a")
        queue.schedule("a", at: 40)  // moves, does not duplicate
        XCTAssertEqual(queue.count, 3)
        XCTAssertEqual(queue.next?.key, "b")
        XCTAssertTrue(queue.remove("b"))
        XCTAssertFalse(queue.remove("b"))
        XCTAssertEqual(queue.due("a"), 40)
        XCTAssertNil(queue.due("b"))
        XCTAssertEqual(queue.popDue(at: 35), ["c"])
        XCTAssertEqual(queue.popDue(at: 35), [])
        XCTAssertEqual(queue.popDue(at: 40), ["a"])
        XCTAssertTrue(queue.isEmpty)
    }

    func testTiesComeOutInSchedulingOrderAndLimitIsHonoured() {
        var queue = TimerQueue<Int>()
        for key in 0..<10 { queue.schedule(key, at: 5) }
        XCTAssertEqual(queue.popDue(at: 5, limit: 4), [0, 1, 2, 3])
        XCTAssertEqual(queue.popDue(at: 5), [4, 5, 6, 7, 8, 9])
    }

    func testAgainstASortedReferenceWithTenThousandKeys() {
        var queue = TimerQueue<Int>()
        var reference: [Int: Int64] = [:]
        var generator = SystemRandomNumberGenerator()
        for _ in 0..<30_000 {
            let key = Int.random(in: 0..<10_000, using: &generator)
            if Bool.random(using: &generator) || reference[key] == nil {
                let due = Int64.random(in: 0..<1_000_000, using: &generator)
                queue.schedule(key, at: due)
                reference[key] = due
            } else {
                XCTAssertTrue(queue.remove(key))
                reference[key] = nil
            }
        }
        XCTAssertEqual(queue.count, reference.count)
        var popped: [(Int, Int64)] = []
        while let next = queue.next {
            XCTAssertEqual(queue.popDue(at: next.due, limit: 1), [next.key])
            popped.append((next.key, next.due))
        }
        XCTAssertEqual(popped.map(\.1), popped.map(\.1).sorted(), "popped in due order")
        XCTAssertEqual(Dictionary(uniqueKeysWithValues: popped), reference)
    }
}
