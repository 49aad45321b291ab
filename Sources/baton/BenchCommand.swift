import BatonCommandLine
import BatonConfig
import BatonLock
import BatonRedis
import BatonSupport
import BatonTokens
import Foundation

/// `baton bench lock` and `baton bench tokens`: latency figures for Baton's client, its lock and
/// its token reads, each as a ratio to a raw baseline measured in the same run (a plain blocking
/// socket in this process, ``RawRedisSocket``), samples interleaved so that noise lands on both.
enum BenchCommand {
    static let lockSpecification = CommandSpecification(
        name: "bench lock",
        usage: [
            "baton bench lock \(ConnectionOptions.bench.group.synopsis) [--samples 2000] [--waiters 16] [--handovers 2000]"
        ],
        options: [.value("samples", "2000"), .value("waiters", "16"), .value("handovers", "2000")],
        groups: [ConnectionOptions.bench.group],
        discussion: """
            Prints, in one run:
              - the raw baseline: PING over a plain blocking socket in this process;
              - Baton's async PING and SET, and the ratio of PING to the raw round trip (target <= 1.2x);
              - uncontended acquire+release cycle latency (p50/p99) and its ratio to two raw round
                trips (target <= 1.3x);
              - with --waiters tasks contending for one lock: hand-over latency (from the holder's
                release call to the next holder's acquire returning), p50/p99, and the longest any
                waiter waited for the lock (target p99 < 1 ms).
            Needs a plain redis:// URL (the baseline speaks plain TCP). Run it against a private
            server on loopback (`make bench` starts one). Keys go under the prefix
            "\(BatonDefaults.benchPrefix)" unless --prefix names another.
            """)

    static let tokensSpecification = CommandSpecification(
        name: "bench tokens",
        usage: [
            "baton bench tokens \(ConnectionOptions.bench.group.synopsis) [--samples 2000] [--readers 64] [--reads 50000]"
        ],
        options: [.value("samples", "2000"), .value("readers", "64"), .value("reads", "50000")],
        groups: [ConnectionOptions.bench.group],
        discussion: """
            Writes one valid token record under the bench prefix, then prints, in one run:
              - the raw baseline: GET of that record over a plain blocking socket in this process;
              - TokenClient.accessToken(for:) latency (p50/p99) and its ratio to the raw GET (target <= 1.2x);
              - throughput: --reads calls of accessToken(for:) from --readers concurrent tasks.
            Needs a plain redis:// URL, like `baton bench lock`.
            """)

    static let secretsSpecification = CommandSpecification(
        name: "bench secrets",
        usage: ["baton bench secrets \(ConnectionOptions.bench.group.synopsis) [--samples 2000]"],
        options: [.value("samples", "2000")],
        groups: [ConnectionOptions.bench.group],
        discussion: """
            The cost of encryption at rest, in one run: a refresh token stored (`seed`: version
            allocation, seal, script) and read back (GET, open), plain (alg none) and sealed
            (AES-256-GCM) alternately, p50/p99 of each and the sealed one's ratio to the plain one;
            and seal+open alone, in this process. Needs a plain redis:// URL.
            """)

    static func run(_ words: [String]) async throws -> ExitCode {
        let specification: CommandSpecification
        switch words.first {
        case "lock": specification = lockSpecification
        case "tokens": specification = tokensSpecification
        case "secrets": specification = secretsSpecification
        case "-h"?, "--help"?:
            Terminal.out(
                [lockSpecification, tokensSpecification, secretsSpecification].map(\.help).joined(separator: "\n"))
            return .success
        default:
            throw UsageError(
                "baton bench needs a target: `baton bench lock`, `baton bench tokens` or `baton bench secrets`")
        }
        guard let arguments = try specification.parseUnlessHelp(Array(words.dropFirst())) else { return .success }
        let connection = try ConnectionOptions.bench.resolve(arguments)
        let endpoint = try RedisEndpoint(url: connection.redisURL)
        let raw = try RawRedisSocket(endpoint: endpoint)
        let client = RedisClient(endpoint: endpoint, options: .init(poolSize: 8))
        defer { client.shutDown() }
        let prefix = connection.prefix ?? BatonDefaults.benchPrefix
        if specification.name == "bench tokens" {
            try await tokens(arguments, client: client, raw: raw, prefix: prefix)
        } else if specification.name == "bench secrets" {
            try await secrets(arguments, client: client, prefix: prefix)
        } else {
            try await lock(arguments, client: client, raw: raw, prefix: prefix)
        }
        return .success
    }

    private static func lock(_ arguments: ParsedArguments, client: RedisClient, raw: RawRedisSocket, prefix: String)
        async throws
    {
        let samples = try arguments.count("samples", default: 2000)
        let waiters = try arguments.count("waiters", default: 16)
        let handovers = try arguments.count("handovers", default: 2000)
        let service = try LockService(client: client, prefix: prefix)
        defer { service.shutDown() }
        let run = UUID().uuidString.prefix(8)

        // Warm up: connections, script cache, listener thread.
        for _ in 0..<200 {
            try await client.ping()
            try raw.roundTrip(RedisCommand("PING"))
        }
        let warm = try service.lock("warmup-\(run)")
        for _ in 0..<100 { try await warm.acquire(timeout: .seconds(1)).release() }

        let lock = try service.lock("uncontended-\(run)")
        let setKey = "\(prefix):{\(run)}:k"
        var raws: [Duration] = []
        var pings: [Duration] = []
        var pooledPings: [Duration] = []
        var sets: [Duration] = []
        var cycles: [Duration] = []
        let clock = ContinuousClock()
        let scriptsBefore = try await scriptServerTime(client)
        for _ in 0..<samples {
            var start = clock.now
            try raw.roundTrip(RedisCommand("PING"))
            raws.append(clock.now - start)
            start = clock.now
            try await client.ping()
            pings.append(clock.now - start)
            start = clock.now
            _ = try await client.withConnection { try $0.send(RedisCommand("PING")) }
            pooledPings.append(clock.now - start)
            start = clock.now
            try await client.set(setKey, to: "v")
            sets.append(clock.now - start)
            start = clock.now
            try await lock.acquire(timeout: .zero).release()
            cycles.append(clock.now - start)
        }
        let scriptsAfter = try await scriptServerTime(client)
        _ = try? await client.delete([setKey])
        let rawPing = Stats(sorted: raws.sorted())
        let ping = Stats(sorted: pings.sorted())
        let pooled = Stats(sorted: pooledPings.sorted())
        // Every EVALSHA in the loop is the lock's (acquire, release); the server's own time in them.
        let scriptTime = Duration.microseconds(
            (scriptsAfter.microseconds - scriptsBefore.microseconds) / max(1, Int64(samples)))
        let set = Stats(sorted: sets.sorted())
        let cycle = Stats(sorted: cycles.sorted())
        Terminal.out("raw round trip (blocking socket, PING)        p50 \(ms(rawPing.p50))  p99 \(ms(rawPing.p99))")
        Terminal.out("Baton client, async path                      PING p50 \(ms(ping.p50))  p99 \(ms(ping.p99))")
        Terminal.out("                                              SET  p50 \(ms(set.p50))  p99 \(ms(set.p99))")
        Terminal.out("  PING ratio to the raw round trip            \(ratios(ping, rawPing)) (target p50 <= 1.2x)")
        Terminal.out("pooled path (a worker thread per connection)  PING p50 \(ms(pooled.p50))  p99 \(ms(pooled.p99))")
        Terminal.out("  ratio to the raw round trip                 \(ratios(pooled, rawPing))")
        Terminal.out("uncontended acquire+release cycle             p50 \(ms(cycle.p50))  p99 \(ms(cycle.p99))")
        Terminal.out(
            "  ratio to two raw round trips                \(ratios(cycle, rawPing, baselineFactor: 2)) (target p50 <= 1.3x)"
        )
        Terminal.out(
            "  of which the server ran the two scripts     \(ms(scriptTime)) per cycle (INFO commandstats: EVALSHA usec)"
        )
        let clientPart = Stats(sorted: cycles.map { $0 - scriptTime }.sorted())
        Terminal.out(
            "  cycle minus script time, to two raw trips   \(ratios(clientPart, rawPing, baselineFactor: 2))")

        let contended = try service.lock("contended-\(run)", options: .init(ttl: .seconds(10)))
        let result = try await contention(lock: contended, waiters: waiters, handovers: handovers)
        Terminal.out(
            "hand-over with \(waiters) waiters (\(result.handovers.count) hand-overs)   p50 \(ms(result.handovers.p50))  p99 \(ms(result.handovers.p99))  max \(ms(result.handovers.max)) (target p99 < 1 ms)"
        )
        Terminal.out(
            "longest wait of any waiter for the lock        \(ms(result.longestWait)); acquisitions per waiter min \(result.perWaiter.min() ?? 0) max \(result.perWaiter.max() ?? 0)"
        )
    }

    private static func tokens(_ arguments: ParsedArguments, client: RedisClient, raw: RawRedisSocket, prefix: String)
        async throws
    {
        let samples = try arguments.count("samples", default: 2000)
        let readers = try arguments.count("readers", default: 64)
        let reads = try arguments.count("reads", default: 50000)
        let service = "bench-\(UUID().uuidString.prefix(8).lowercased())"
        let tokens = TokenClient(client: client, prefix: prefix)
        let key = try tokens.store.keys(service).token
        let now = try await client.serverTimeMilliseconds()
        let record = TokenRecord(
            service: service, accessToken: "bench-" + String(repeating: "t", count: 900), tokenType: "Bearer",
            expiresAt: now + 3_600_000, scope: "read write", version: 1, refreshedAt: now, refreshedBy: "baton bench")
        try await client.set(key, to: Array(try JSONEncoder().encode(record)), expiry: .seconds(600))
        defer { Task { _ = try? await client.delete([key]) } }

        for _ in 0..<200 {
            _ = try await tokens.accessToken(for: service)
            try raw.roundTrip(RedisCommand("GET", key))
        }
        var raws: [Duration] = []
        var readSamples: [Duration] = []
        let clock = ContinuousClock()
        for _ in 0..<samples {
            var start = clock.now
            try raw.roundTrip(RedisCommand("GET", key))
            raws.append(clock.now - start)
            start = clock.now
            _ = try await tokens.accessToken(for: service)
            readSamples.append(clock.now - start)
        }
        let rawGet = Stats(sorted: raws.sorted())
        let read = Stats(sorted: readSamples.sorted())
        Terminal.out("raw GET of the record (blocking socket)       p50 \(ms(rawGet.p50))  p99 \(ms(rawGet.p99))")
        Terminal.out("TokenClient.accessToken(for:)                 p50 \(ms(read.p50))  p99 \(ms(read.p99))")
        Terminal.out("  ratio to the raw GET                        \(ratios(read, rawGet)) (target p50 <= 1.2x)")

        let started = clock.now
        let perReader = max(1, reads / max(1, readers))
        try await withThrowingTaskGroup(of: Void.self) { group in
            for _ in 0..<readers {
                group.addTask { for _ in 0..<perReader { _ = try await tokens.accessToken(for: service) } }
            }
            try await group.waitForAll()
        }
        let elapsed = clock.now - started
        let total = perReader * readers
        Terminal.out(
            "throughput, \(readers) concurrent readers            \(Int(Double(total) / elapsed.seconds)) reads/s (\(total) reads in \(elapsed.shortDescription))"
        )
    }

    private static func secrets(_ arguments: ParsedArguments, client: RedisClient, prefix: String) async throws {
        let samples = try arguments.count("samples", default: 2000)
        let service = "bench-\(UUID().uuidString.prefix(8).lowercased())"
        let keyring = SecretEncryption.keyring(
            try Keyring(parsing: try EncryptionKey.generate().keyringEntry, source: "bench"))
        let plain = TokenStore(client: client, prefix: prefix, encryption: .none)
        let sealed = TokenStore(client: client, prefix: prefix, encryption: keyring)
        let keys = try plain.keys(service)
        defer { Task { _ = try? await client.delete([keys.secret, keys.token, keys.events, keys.lock.fence]) } }
        let token = "bench-refresh-" + String(repeating: "r", count: 200)
        let clock = ContinuousClock()
        func cycle(_ store: TokenStore) async throws -> Duration {
            let start = clock.now
            try await store.seed(service: service, refreshToken: token, replica: "baton bench")
            _ = try await store.secret(service)
            return clock.now - start
        }
        for _ in 0..<200 {
            _ = try await cycle(plain)
            _ = try await cycle(sealed)
        }
        var plainSamples: [Duration] = []
        var sealedSamples: [Duration] = []
        for _ in 0..<samples {
            plainSamples.append(try await cycle(plain))
            sealedSamples.append(try await cycle(sealed))
        }
        var local: [Duration] = []
        for fence in 0..<Int64(samples) {
            let start = clock.now
            let bytes = try sealed.sealer.seal(SecretEnvelope(refreshToken: token, fence: fence), service: service)
            _ = try sealed.sealer.open(bytes, service: service)
            local.append(clock.now - start)
        }
        let (plainStats, sealedStats) = (Stats(sorted: plainSamples.sorted()), Stats(sorted: sealedSamples.sorted()))
        let localStats = Stats(sorted: local.sorted())
        Terminal.out(
            "store + read a refresh token, plain (alg none)  p50 \(ms(plainStats.p50))  p99 \(ms(plainStats.p99))")
        Terminal.out(
            "store + read a refresh token, sealed (A256GCM)  p50 \(ms(sealedStats.p50))  p99 \(ms(sealedStats.p99))")
        Terminal.out("  ratio sealed to plain                         \(ratios(sealedStats, plainStats))")
        Terminal.out(
            "seal + open alone, in process                   p50 \(ms(localStats.p50))  p99 \(ms(localStats.p99))")
    }

    /// The server's total time in `EVALSHA` so far (`INFO commandstats`), and its call count.
    private static func scriptServerTime(_ client: RedisClient) async throws -> (microseconds: Int64, calls: Int64) {
        let info = try await client.send("INFO", "commandstats").string ?? ""
        guard let line = info.split(whereSeparator: \.isNewline).first(where: { $0.hasPrefix("cmdstat_evalsha:") })
        else { return (0, 0) }
        var fields: [Substring: Int64] = [:]
        for pair in line.dropFirst("cmdstat_evalsha:".count).split(separator: ",") {
            let parts = pair.split(separator: "=")
            if parts.count == 2, let value = Int64(parts[1]) { fields[parts[0]] = value }
        }
        return (fields["usec"] ?? 0, fields["calls"] ?? 0)
    }

    /// `p50 1.13x  p99 1.40x`: `measured` against `baseline` (times `baselineFactor`).
    private static func ratios(_ measured: Stats, _ baseline: Stats, baselineFactor: Double = 1) -> String {
        let p50 = measured.p50.seconds / (baselineFactor * baseline.p50.seconds)
        let p99 = measured.p99.seconds / (baselineFactor * baseline.p99.seconds)
        return "p50 \(DisplayFormat.ratio(p50))x  p99 \(DisplayFormat.ratio(p99))x"
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
