import BatonCommandLine
import BatonConfig
import BatonLock
import BatonRedis
import BatonSupport
import Foundation

/// `baton bench lock`: latency figures for the lock, with the Redis round trip measured by the
/// same client in the same run as the baseline.
enum BenchCommand {
    static let specification = CommandSpecification(
        name: "bench lock",
        usage: [
            "baton bench lock \(ConnectionOptions.bench.group.synopsis) [--samples 2000] [--waiters 16] [--handovers 2000]"
        ],
        options: [.value("samples", "2000"), .value("waiters", "16"), .value("handovers", "2000")],
        groups: [ConnectionOptions.bench.group],
        discussion: """
            Prints, in one run:
              - the Redis round-trip baseline: PING and SET latency through Baton's client;
              - uncontended acquire+release cycle latency (p50/p99) and its ratio to two SET round trips;
              - with --waiters tasks contending for one lock: hand-over latency (from the holder's
                release call to the next holder's acquire returning), p50/p99, and the longest any
                waiter waited for the lock.
            Run it against a private server on loopback (`make bench` starts one). Keys go under the
            prefix "\(BatonDefaults.benchPrefix)" unless --prefix names another.
            """)

    static func run(_ words: [String]) async throws -> ExitCode {
        guard words.first == "lock" else {
            if words.first.map({ ["-h", "--help"].contains($0) }) == true {
                Terminal.out(specification.help)
                return .success
            }
            throw UsageError("baton bench needs a target: `baton bench lock`")
        }
        let arguments = try specification.parse(Array(words.dropFirst()))
        if arguments.has("help") {
            Terminal.out(specification.help)
            return .success
        }
        let samples = try arguments.count("samples", default: 2000)
        let waiters = try arguments.count("waiters", default: 16)
        let handovers = try arguments.count("handovers", default: 2000)

        let connection = try ConnectionOptions.bench.resolve(arguments)
        let client = try RedisClient(url: connection.redisURL, options: .init(poolSize: 8))
        let service = try LockService(client: client, prefix: connection.prefix ?? BatonDefaults.benchPrefix)
        defer {
            service.shutDown()
            client.shutDown()
        }
        let run = UUID().uuidString.prefix(8)

        // Warm up: connections, script cache, listener thread.
        for _ in 0..<200 { try await client.ping() }
        let warm = try service.lock("warmup-\(run)")
        for _ in 0..<100 { try await warm.acquire(timeout: .seconds(1)).release() }

        // Baseline and lock cycles interleaved, sample by sample, so that noise from the rest of
        // the machine lands on both alike and the ratio stays meaningful.
        let lock = try service.lock("uncontended-\(run)")
        let setKey = "baton-bench:{\(run)}:k"
        var pings: [Duration] = []
        var sets: [Duration] = []
        var cycles: [Duration] = []
        let clock = ContinuousClock()
        for _ in 0..<samples {
            var start = clock.now
            try await client.ping()
            pings.append(clock.now - start)
            start = clock.now
            try await client.set(setKey, to: "v")
            sets.append(clock.now - start)
            start = clock.now
            try await lock.acquire(timeout: .zero).release()
            cycles.append(clock.now - start)
        }
        let ping = Stats(sorted: pings.sorted())
        let set = Stats(sorted: sets.sorted())
        let cycle = Stats(sorted: cycles.sorted())
        Terminal.out("Redis round trip (Baton client, async path)   PING p50 \(ms(ping.p50))  p99 \(ms(ping.p99))")
        Terminal.out("                                               SET  p50 \(ms(set.p50))  p99 \(ms(set.p99))")
        let ratio = cycle.p50.seconds / (2 * set.p50.seconds)
        let ratio99 = cycle.p99.seconds / (2 * set.p99.seconds)
        Terminal.out("uncontended acquire+release cycle             p50 \(ms(cycle.p50))  p99 \(ms(cycle.p99))")
        Terminal.out(
            "  ratio to two SET round trips                p50 \(DisplayFormat.ratio(ratio))x  p99 \(DisplayFormat.ratio(ratio99))x (target <= 1.3x)"
        )

        let contended = try service.lock("contended-\(run)", options: .init(ttl: .seconds(10)))
        let result = try await contention(lock: contended, waiters: waiters, handovers: handovers)
        Terminal.out(
            "hand-over with \(waiters) waiters (\(result.handovers.count) hand-overs)   p50 \(ms(result.handovers.p50))  p99 \(ms(result.handovers.p99))  max \(ms(result.handovers.max)) (target p99 < 1 ms)"
        )
        Terminal.out(
            "longest wait of any waiter for the lock        \(ms(result.longestWait)); acquisitions per waiter min \(result.perWaiter.min() ?? 0) max \(result.perWaiter.max() ?? 0)"
        )
        return .success
    }

    struct Stats {
        let sorted: [Duration]
        var count: Int { sorted.count }
        var p50: Duration { sorted[sorted.count / 2] }
        var p99: Duration { sorted[min(sorted.count - 1, sorted.count * 99 / 100)] }
        var max: Duration { sorted.last ?? .zero }
    }

    struct ContentionResult {
        let handovers: Stats
        let longestWait: Duration
        let perWaiter: [Int]
    }

    /// `waiters` tasks loop acquire → note times → release until `handovers` hand-overs happened.
    static func contention(lock: DistributedLock, waiters: Int, handovers: Int) async throws -> ContentionResult {
        let board = HandoverBoard(target: handovers)
        let perWaiter = try await withThrowingTaskGroup(of: (Int, Duration).self) { group in
            for _ in 0..<waiters {
                group.addTask {
                    var acquisitions = 0
                    var longest = Duration.zero
                    while !board.isDone {
                        let asked = ContinuousClock.now
                        let lease = try await lock.acquire(timeout: .seconds(30))
                        let acquired = ContinuousClock.now
                        longest = max(longest, acquired - asked)
                        acquisitions += 1
                        board.acquired(at: acquired)
                        board.releasing(at: ContinuousClock.now)
                        try await lease.release()
                    }
                    return (acquisitions, longest)
                }
            }
            var results: [(Int, Duration)] = []
            for try await result in group { results.append(result) }
            return results
        }
        return ContentionResult(
            handovers: Stats(sorted: board.samples.sorted()),
            longestWait: perWaiter.map(\.1).max() ?? .zero,
            perWaiter: perWaiter.map(\.0)
        )
    }

    static func ms(_ duration: Duration) -> String {
        DisplayFormat.milliseconds(duration, width: 7)
    }
}

// @unchecked: `lock` guards every mutable property.
/// Shared between the contending tasks: when the last release call started, and the gaps.
final class HandoverBoard: @unchecked Sendable {
    private let lock = NSLock()
    private let target: Int
    private var lastRelease: ContinuousClock.Instant?
    private var gaps: [Duration] = []

    init(target: Int) { self.target = target }

    var isDone: Bool { lock.withLock { gaps.count >= target } }
    var samples: [Duration] { lock.withLock { gaps } }

    func acquired(at instant: ContinuousClock.Instant) {
        lock.withLock {
            if let lastRelease, gaps.count < target { gaps.append(instant - lastRelease) }
            lastRelease = nil
        }
    }

    func releasing(at instant: ContinuousClock.Instant) {
        lock.withLock { lastRelease = instant }
    }
}
