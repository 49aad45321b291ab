import BatonTokens

/// One service the coordinator keeps fresh.
public struct ServiceDefinition: Sendable {
    /// The service name (the `{svc}` in its keys).
    public let name: String
    /// How it is refreshed.
    public let settings: RefreshSettings
    /// Its token endpoint.
    public let provider: any TokenProvider
    /// The shortest interval between two forced refreshes (workers' requests). Default: 5 seconds.
    public let forcedRefreshMinInterval: Duration

    /// Creates a definition.
    public init(
        name: String, settings: RefreshSettings, provider: any TokenProvider,
        forcedRefreshMinInterval: Duration = .seconds(5)
    ) {
        self.name = name
        self.settings = settings
        self.provider = provider
        self.forcedRefreshMinInterval = forcedRefreshMinInterval
    }
}
