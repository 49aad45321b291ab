import BatonSupport
import Foundation
import XCTest

/// Unit tests for the primitives; none needs a server.
final class BatonSupportTests: XCTestCase {
    // MARK: - LockedBox, StopFlag

    func testLockedBoxSerialisesUpdates() {
        let box = LockedBox(0)
        DispatchQueue.concurrentPerform(iterations: 1000) { _ in box.withLockedValue { $0 += 1 } }
        XCTAssertEqual(box.withLockedValue { $0 }, 1000)
    }

    func testStopFlagEndsASleepEarly() {
        let flag = StopFlag()
        XCTAssertFalse(flag.sleep(for: .milliseconds(10)))
        DispatchQueue.global().asyncAfter(deadline: .now() + 0.05) { flag.set() }
        let start = ContinuousClock.now
        XCTAssertTrue(flag.sleep(for: .seconds(10)))
        XCTAssertLessThan(ContinuousClock.now - start, .seconds(5))
        XCTAssertTrue(flag.isSet)
    }

    // MARK: - Mailbox

    func testMailboxKeepsEventsPostedWhileNobodyWaits() async {
        let mailbox = Mailbox<Int>(collapsing: { $0 == 0 && $1 == 0 })
        mailbox.post(1)
        mailbox.post(0)
        mailbox.post(0)  // collapses into the kept 0
        mailbox.post(2)
        var received: [Int] = []
        while case .event(let value) = await mailbox.next(timeout: .milliseconds(20)) { received.append(value) }
        XCTAssertEqual(received, [1, 0, 2])
    }

    func testMailboxTimesOut() async {
        let mailbox = Mailbox<Int>(collapsing: { _, _ in false })
        let start = ContinuousClock.now
        guard case .timedOut = await mailbox.next(timeout: .milliseconds(50)) else {
            return XCTFail("expected a timeout")
        }
        XCTAssertGreaterThanOrEqual(ContinuousClock.now - start, .milliseconds(40))
    }

    func testMailboxHandsAnEventToAWaitingTask() async {
        let mailbox = Mailbox<Int>(collapsing: { _, _ in false })
        async let delivery = mailbox.next(timeout: .seconds(10))
        try? await Task.sleep(for: .milliseconds(20))
        mailbox.post(7)
        guard case .event(7) = await delivery else { return XCTFail("expected the posted event") }
    }

    func testMailboxWaitEndsWhenTheTaskIsCancelled() async {
        let mailbox = Mailbox<Int>(collapsing: { _, _ in false })
        let waiting = Task { await mailbox.next(timeout: nil) }
        try? await Task.sleep(for: .milliseconds(20))
        waiting.cancel()
        guard case .cancelled = await waiting.value else { return XCTFail("expected cancellation") }
    }

    func testClosedMailboxWakesEveryWaiterAndStaysClosed() async {
        let mailbox = Mailbox<Int>(collapsing: { _, _ in false })
        let first = Task { await mailbox.next(timeout: nil) }
        let second = Task { await mailbox.next(timeout: nil) }
        try? await Task.sleep(for: .milliseconds(20))
        mailbox.close()
        for waiter in [first, second] {
            guard case .closed = await waiter.value else { return XCTFail("expected closed") }
        }
        mailbox.post(1)  // ignored
        guard case .closed = await mailbox.next(timeout: .seconds(10)) else { return XCTFail("expected closed") }
        XCTAssertTrue(mailbox.isClosed)
    }

    func testSignalsCollapseAndIgnoreCancellation() async {
        let signal = Mailbox<Void>()
        signal.signal()
        signal.signal()
        let start = ContinuousClock.now
        await signal.wait(upTo: .seconds(10))  // the kept signal
        XCTAssertLessThan(ContinuousClock.now - start, .seconds(5))
        let waiting = Task {
            let start = ContinuousClock.now
            await signal.wait(upTo: .milliseconds(100))  // the second signal collapsed: this one times out
            return ContinuousClock.now - start
        }
        waiting.cancel()
        let waited = await waiting.value
        XCTAssertGreaterThanOrEqual(waited, .milliseconds(80))
    }

    // MARK: - Blocking calls

    func testRunOnDedicatedThreadReturnsAndThrows() async {
        let value = await runOnDedicatedThread(named: "test") { () -> String in
            Thread.sleep(forTimeInterval: 0.01)  // blocks a thread of its own, not the caller's
            return "done"
        }
        XCTAssertEqual(value, "done")
        struct Boom: Error {}
        do {
            _ = try await runOnDedicatedThread(named: "test") { () throws(Boom) -> Int in throw Boom() }
            XCTFail("expected a throw")
        } catch {
            XCTAssertNotNil(error as Boom?)
        }
    }

    // MARK: - Backoff

    func testBackoffStaysWithinItsBoundsAndResets() {
        var backoff = Backoff(base: .milliseconds(10), cap: .milliseconds(200))
        for attempt in 0..<40 {
            let delay = backoff.next()
            XCTAssertGreaterThanOrEqual(delay, .zero)
            XCTAssertLessThanOrEqual(delay, .milliseconds(min(200, 10 << min(attempt, 20))))
        }
        XCTAssertEqual(backoff.attempt, 40)
        backoff.reset()
        XCTAssertEqual(backoff.attempt, 0)
        XCTAssertLessThanOrEqual(backoff.next(), .milliseconds(10))
    }

    // MARK: - Durations, digests, edit distance

    func testParseDuration() {
        XCTAssertEqual(parseDuration("250ms"), .milliseconds(250))
        XCTAssertEqual(parseDuration("30s"), .seconds(30))
        XCTAssertEqual(parseDuration("5m"), .seconds(300))
        XCTAssertEqual(parseDuration("1h"), .seconds(3600))
        for bad in ["", "30", "0s", "-1s", "1.5s", "s", "10sec", "1d", " 5s", "99999999999999s"] {
            XCTAssertNil(parseDuration(bad), bad)
        }
    }

    func testDurationText() {
        XCTAssertEqual(Duration.milliseconds(250).shortDescription, "250ms")
        XCTAssertEqual(Duration.milliseconds(1500).shortDescription, "1.5s")
        XCTAssertEqual(Duration.seconds(2).shortDescription, "2s")
        XCTAssertEqual(Duration.milliseconds(1500).seconds, 1.5)
        XCTAssertEqual(Duration.milliseconds(1500).milliseconds, 1500)
        for text in ["250ms", "45s", "5m", "1h"] { XCTAssertEqual(parseDuration(text)?.configurationText, text) }
    }

    func testDigests() {
        XCTAssertEqual(Digest.sha1Hex([]), "da39a3ee5e6b4b0d3255bfef95601890afd80709")
        XCTAssertEqual(Digest.sha1Hex(Array("return 1".utf8)), "e0e1f9fabfc9d4800c877a703b823ac0578ff8db")
        // `echo -n abc | sha256sum`
        XCTAssertEqual(
            Digest.sha256(Array("abc".utf8)).map { String(format: "%02x", $0) }.joined(),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
    }

    func testEditDistance() {
        XCTAssertEqual(editDistance("ttl", "tll"), 1)
        XCTAssertEqual(editDistance("kitten", "sitting"), 3)
        XCTAssertEqual(editDistance("", "abc"), 3)
        XCTAssertEqual(editDistance("wait", "wait"), 0)
    }
}
