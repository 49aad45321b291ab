/// The names of Baton's metrics, each written once (the README's "Operating Baton" table lists them).
public enum MetricName {
    /// Counter `{service,result}`.
    public static let refreshes = "baton_refresh_total"
    /// Histogram.
    public static let refreshDuration = "baton_refresh_duration_seconds"
    /// Counter `{service,class}`.
    public static let providerErrors = "baton_provider_errors_total"
    /// Gauge `{service}`, from Redis.
    public static let tokenExpiry = "baton_token_expiry_timestamp_seconds"
    /// Gauge `{service}`, from Redis.
    public static let tokenVersion = "baton_token_version"
    /// Gauge `{service,status}`, from Redis.
    public static let serviceStatus = "baton_service_status"
    /// Counter `{outcome}`.
    public static let forcedRequests = "baton_forced_refresh_requests_total"
    /// Gauge, from Redis.
    public static let requestsPending = "baton_refresh_requests_pending"
    /// Histogram.
    public static let lockWait = "baton_lock_wait_seconds"
    /// Gauge.
    public static let redisUp = "baton_redis_up"
    /// Histogram.
    public static let redisCommandDuration = "baton_redis_command_duration_seconds"
    /// Gauge `{version}`, always 1.
    public static let buildInfo = "baton_build_info"
}
