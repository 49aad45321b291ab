/// What Redis says about every service, read by one replica for one scrape: the gauges that show
/// the whole fleet whichever replica is scraped (`baton_token_expiry_timestamp_seconds`,
/// `baton_token_version`, `baton_service_status`, `baton_refresh_requests_pending`).
public struct FleetState: Sendable, Equatable {
    /// One service.
    public struct Service: Sendable, Equatable {
        /// The service name.
        public var name: String
        /// Its state.
        public var status: ServiceStatus
        /// When its access token expires, in milliseconds since the epoch (`nil`: no record).
        public var expiresAt: Int64?
        /// Its record's version (`nil`: no record).
        public var version: Int64?

        /// Creates a service entry.
        public init(name: String, status: ServiceStatus, expiresAt: Int64? = nil, version: Int64? = nil) {
            self.name = name
            self.status = status
            self.expiresAt = expiresAt
            self.version = version
        }
    }

    /// Every service, in any order (the families are sorted).
    public var services: [Service]
    /// Forced-refresh requests waiting in the shared list.
    public var pendingRequests: Int

    /// Creates a state.
    public init(services: [Service], pendingRequests: Int) {
        self.services = services
        self.pendingRequests = pendingRequests
    }

    /// The families this state exports.
    public func families() -> [MetricFamilySnapshot] {
        let sorted = services.sorted { $0.name < $1.name }
        var expiry: [MetricSample] = []
        var versions: [MetricSample] = []
        var statuses: [MetricSample] = []
        statuses.reserveCapacity(sorted.count * ServiceStatus.allCases.count)
        for service in sorted {
            let label = [(name: "service", value: service.name)]
            if let expiresAt = service.expiresAt {
                expiry.append(
                    MetricSample(name: MetricName.tokenExpiry, labels: label, value: Double(expiresAt) / 1000))
            }
            if let version = service.version {
                versions.append(MetricSample(name: MetricName.tokenVersion, labels: label, value: Double(version)))
            }
            for status in ServiceStatus.allCases.sorted(by: { $0.rawValue < $1.rawValue }) {
                statuses.append(
                    MetricSample(
                        name: MetricName.serviceStatus, labels: label + [(name: "status", value: status.rawValue)],
                        value: status == service.status ? 1 : 0))
            }
        }
        return [
            MetricFamilySnapshot(
                name: MetricName.tokenExpiry,
                help: "When the service's access token expires (Unix seconds), from Redis.",
                type: .gauge, samples: expiry),
            MetricFamilySnapshot(
                name: MetricName.tokenVersion, help: "The version of the service's token record, from Redis.",
                type: .gauge, samples: versions),
            MetricFamilySnapshot(
                name: MetricName.serviceStatus,
                help: "1 for the service's current status (as `baton status` shows it), 0 for the others.",
                type: .gauge, samples: statuses),
            MetricFamilySnapshot(
                name: MetricName.requestsPending,
                help: "Forced-refresh requests waiting in the shared request list (LLEN).", type: .gauge,
                samples: [MetricSample(name: MetricName.requestsPending, value: Double(pendingRequests))]),
        ]
    }

    /// `baton_redis_up`: 1 when this scrape's read of Redis succeeded in time, else 0.
    public static func redisUp(_ up: Bool) -> MetricFamilySnapshot {
        MetricFamilySnapshot(
            name: MetricName.redisUp, help: "1 when this replica's last read of Redis (at this scrape) succeeded.",
            type: .gauge, samples: [MetricSample(name: MetricName.redisUp, value: up ? 1 : 0)])
    }
}
