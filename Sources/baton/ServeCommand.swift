import BatonCommandLine
import BatonConfig
import BatonCoordinator
import BatonHTTP
import BatonMetrics
import BatonRedis
import BatonSupport
import BatonTokens
import Foundation

/// `baton serve`: the coordinator daemon.
enum ServeCommand {
    static let specification = CommandSpecification(
        name: "serve",
        usage: [
            "baton serve \(ConnectionOptions.coordinator.group.synopsis) [--id NAME] [--log-level debug|info|warn|error]"
        ],
        options: [.value("id", "NAME"), .value("log-level", "debug|info|warn|error")],
        groups: [ConnectionOptions.coordinator.group],
        discussion: """
            Keeps every configured credential fresh, as one of any number of replicas sharing Redis:
            refreshes each service before it expires (exactly one replica per refresh, by the service
            lock), answers workers' forced-refresh requests (LPUSH PREFIX:refresh-requests
            '{"service":"SVC","version":N}'), and logs one JSON object per line to standard error.
            --id names this replica in records, events and logs (default host:pid).
            SIGTERM/SIGINT: /readyz turns 503, stop taking work, let refreshes in flight finish, exit 0.
            HTTP (http.listen, default 127.0.0.1:9464): /livez, /readyz; a listen address that
            cannot be bound stops serve with exit status 2. With http.api_keys, the token API too:
            GET /v1/tokens/SVC and POST /v1/tokens/SVC/refresh (README "HTTP token API").
            SIGHUP: re-read the configuration (services added or removed); a bad file is logged and ignored.
            """)

    static func run(_ words: [String]) async throws -> ExitCode {
        guard let arguments = try specification.parseUnlessHelp(words) else { return .success }
        let environment = ProcessInfo.processInfo.environment
        let connection = try ConnectionOptions.coordinator.resolve(arguments, environment: environment)
        guard let configuration = connection.configuration, let path = connection.configurationPath else {
            throw ConnectionOptions.missingConfiguration
        }
        let level =
            try arguments.value("log-level").map { text -> StructuredLog.Level in
                guard let level = StructuredLog.Level(rawValue: text) else {
                    throw UsageError("--log-level must be debug, info, warn or error, not '\(text)'")
                }
                return level
            } ?? .info
        let replica = arguments.value("id") ?? CommandContext.processLabel
        let log = StructuredLog(replica: replica, minimum: level)
        // At every start, not only at `baton config check`: plain-text tokens must stay visible.
        for warning in configuration.warnings { log.log(.warn, "warning", ["message": .text(warning)]) }
        let prefix = connection.prefix ?? configuration.prefix
        let metrics = ReplicaMetrics(version: BatonDefaults.version)
        let client = try RedisClient(
            url: connection.redisURL,
            options: .init(
                connection: .init(reconnect: .init(giveUpAfter: .seconds(1))),
                poolSize: min(64, configuration.maxConcurrentRefreshes + 6),
                commandObserver: MetricsEndpoint.redisObserver(metrics)))
        defer { client.shutDown() }
        let coordinator = try Coordinator(
            client: client,
            options: .init(
                replica: replica, prefix: prefix, encryption: configuration.encryption,
                maxConcurrentRefreshes: configuration.maxConcurrentRefreshes,
                replicaAcknowledgement: ReplicaAcknowledgement(configuration),
                alerts: configuration.alerts.map(AlertOptions.init)),
            services: definitions(configuration), log: log,
            spool: RotatedTokenSpool(
                stateDirectory: configuration.resolvedStateDirectory(environment: environment),
                encryption: configuration.encryption),
            metrics: metrics)

        let router = HTTPRouter()
        let probes = ServeProbes(client: client, coordinator: coordinator)
        probes.register(on: router)
        let scrape = MetricsEndpoint.handler(coordinator: coordinator)
        router.add(.get, "/metrics") { _ in
            let (contentType, body) = await scrape()
            return HTTPResponse(status: 200, headers: [(name: "Content-Type", value: contentType)], body: body)
        }
        let tokenAPI = try TokenAPI.register(
            on: router, configuration: configuration, client: client, prefix: prefix, coordinator: coordinator, log: log
        )
        defer { tokenAPI?.stop() }
        let listener = try ServeProbes.startListener(configuration.http, router: router, log: log)
        defer { listener?.stop() }
        let readinessChecks = Task { await probes.run() }
        defer { readinessChecks.cancel() }

        let signals = SignalHandlers()
        signals.on([SIGTERM, SIGINT]) {
            probes.drain()
            coordinator.stop()
        }
        signals.on([SIGHUP]) {
            Task {
                do {
                    let fresh = try BatonConfiguration.load(
                        path: path, environment: ProcessInfo.processInfo.environment)
                    await coordinator.reload(definitions(fresh))
                } catch {
                    log.log(.error, "config_reload_failed", ["message": .text(String(describing: error))])
                }
            }
        }
        defer { signals.cancel() }
        await coordinator.run()
        return .success
    }

    static func definitions(_ configuration: BatonConfiguration) -> [ServiceDefinition] {
        configuration.services.map { service in
            ServiceDefinition(
                name: service.name, settings: RefreshSettings(service, configuration: configuration),
                provider: OAuthTokenProvider(service: service),
                forcedRefreshMinInterval: service.forcedRefreshMinInterval)
        }
    }
}
