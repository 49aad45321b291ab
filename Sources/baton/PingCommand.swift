import BatonCommandLine
import BatonRedis
import Foundation

/// `baton ping [--redis URL] [--count N]`: a smoke test of the Redis client.
enum PingCommand {
    static let specification = CommandSpecification(
        name: "ping", usage: ["baton ping \(ConnectionOptions.redisOnly.group.synopsis) [--count N]"],
        options: [.value("count", "N")], groups: [ConnectionOptions.redisOnly.group],
        discussion: """
            Connects to Redis, sends N PINGs (default 100) and prints the server version and the
            round-trip latency (median and 99th percentile) measured by Baton's own client.
            """)

    static func run(_ words: [String]) async throws -> ExitCode {
        guard let arguments = try specification.parseUnlessHelp(words) else { return .success }
        let count = try arguments.count("count", default: 100)

        let endpoint = try RedisEndpoint(url: ConnectionOptions.redisOnly.resolve(arguments).redisURL)
        let client = RedisClient(endpoint: endpoint, options: .init(poolSize: 1))
        defer { client.shutDown() }
        let info = try await client.send("INFO", "server").string ?? ""
        let version =
            info.split(separator: "\r\n").first { $0.hasPrefix("redis_version:") }?.dropFirst("redis_version:".count)
            ?? "?"

        // Measure on the worker thread itself, so the figure is the Redis round trip and not the
        // hop between Swift tasks and the pool.
        let samples = try await client.withConnection { connection in
            try (0..<count).map { _ in
                let start = ContinuousClock.now
                try connection.send(RedisCommand("PING"))
                return ContinuousClock.now - start
            }
        }.sorted()
        let p50 = samples[samples.count / 2]
        let p99 = samples[min(samples.count - 1, samples.count * 99 / 100)]
        Terminal.out(
            "PONG from Redis \(version) at \(endpoint.address): \(count) pings, p50 \(DisplayFormat.milliseconds(p50)), p99 \(DisplayFormat.milliseconds(p99))"
        )
        return .success
    }
}
