import BatonCommandLine
import BatonConfig
import BatonCoordinator
import BatonHTTP
import BatonRedis
import BatonSupport
import Foundation

/// `/livez` and `/readyz` of `baton serve`, and the listener they are served on.
///
/// - `/livez`: 200 `ok` while the coordinator's scheduler loop has gone round within
///   ``livenessWindow`` (it does every 5 s at most, also while Redis is down: a restart would
///   not help then), else 503.
/// - `/readyz`: 200 `ready` while the last `ROLE` check, at most ``readinessStaleAfter`` old,
///   found a writable master; 503 with a one-line reason otherwise, and from the moment
///   ``drain()`` is called (SIGTERM) on. The check runs in the background once a second with a
///   1 s timeout, so a probe only reads its result: probes never wait on Redis nor pile up.
final class ServeProbes: Sendable {
    static let livenessWindow: Duration = .seconds(30)
    static let readinessStaleAfter: Duration = .seconds(5)
    static let checkInterval: Duration = .seconds(1)

    private struct Readiness: Sendable {
        var checkedAt: ContinuousClock.Instant?
        var problem: String? = "Redis not checked yet"
        var draining = false
    }

    private let client: RedisClient
    private let coordinator: Coordinator
    private let readiness = LockedBox(Readiness())
    private let stopFlag = StopFlag()

    init(client: RedisClient, coordinator: Coordinator) {
        self.client = client
        self.coordinator = coordinator
    }

    /// Adds `/livez` and `/readyz` (GET and HEAD) to `router`.
    func register(on router: HTTPRouter) {
        router.add(.get, "/livez") { [coordinator] _ in
            let idle = ContinuousClock.now - coordinator.lastLoopTick
            guard idle < Self.livenessWindow else {
                return .text(503, "scheduler loop has not run for \(Int(idle.seconds))s")
            }
            return .text(200, "ok")
        }
        router.add(.get, "/readyz") { [self] _ in
            if let problem = readinessProblem() { return .text(503, problem) }
            return .text(200, "ready")
        }
    }

    /// Turns `/readyz` to 503 for good (SIGTERM: traffic and probes drain before the coordinator).
    func drain() {
        readiness.withLockedValue { $0.draining = true }
        stopFlag.set()
    }

    /// Checks Redis's role once a second until ``drain()`` or cancellation.
    func run() async {
        while !stopFlag.isSet && !Task.isCancelled {
            let problem = await roleProblem()
            readiness.withLockedValue {
                $0.checkedAt = .now
                $0.problem = problem
            }
            try? await Task.sleep(for: Self.checkInterval)
        }
    }

    private func readinessProblem() -> String? {
        let state = readiness.withLockedValue { $0 }
        if state.draining { return "shutting down" }
        guard let checkedAt = state.checkedAt else { return state.problem }
        let age = ContinuousClock.now - checkedAt
        if age > Self.readinessStaleAfter { return "Redis has not answered ROLE for \(Int(age.seconds))s" }
        return state.problem
    }

    /// `nil` when Redis answers `ROLE` as a master, else why not (no address or secret in it).
    private func roleProblem() async -> String? {
        do {
            let reply = try await client.send(RedisCommand("ROLE"), timeout: .seconds(1))
            let role = reply.array?.first?.string ?? "?"
            return role == "master" ? nil : "Redis is a \(role), not a writable master"
        } catch let error as RedisError {
            return error.isConnectionProblem ? "Redis unreachable" : "Redis refused ROLE"
        } catch {
            return "Redis unreachable"
        }
    }

    /// Starts the listener `http` names with `router`, logging `http_listening`; `nil` when
    /// `http.listen` is `off`.
    /// - Throws: ``HTTPListenerError`` when the address cannot be bound (`baton serve` exits 2).
    static func startListener(_ http: HTTPConfiguration, router: HTTPRouter, log: StructuredLog) throws
        -> HTTPListener?
    {
        guard let listen = http.listen else {
            log.log(.info, "http_disabled")
            return nil
        }
        let listener = try HTTPListener(
            address: listen.host, port: listen.port,
            limits: .init(
                maxConnections: http.maxConnections, maxConnectionsPerIP: http.maxConnectionsPerIP,
                maxBodyBytes: http.maxBody),
            handler: router.handle)
        log.log(
            .info, "http_listening",
            ["address": .text(HTTPConfiguration.Listen(host: listen.host, port: listener.boundPort).text)])
        return listener
    }
}
