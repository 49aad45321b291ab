import BatonLock
import BatonRedis
import Foundation

/// How one service is refreshed.
public struct RefreshSettings: Sendable, Hashable {
    /// Refresh when `now >= expires_at - buffer` (the buffer is capped at half the token's
    /// lifetime). Default: 60 seconds.
    public var refreshBuffer: Duration
    /// Whether the grant needs a stored refresh token (`refresh_token`: yes;
    /// `client_credentials`: no). Default: `true`.
    public var usesRefreshToken: Bool
    /// The refresh lock's lease (renewed while the provider call runs). Default: 30 seconds.
    public var lockTTL: Duration
    /// How long to wait for another holder's refresh before giving up. Default: 10 seconds.
    public var lockWait: Duration

    /// Creates settings; every parameter has the default documented on its property.
    public init(refreshBuffer: Duration = .seconds(60), usesRefreshToken: Bool = true,
                lockTTL: Duration = .seconds(30), lockWait: Duration = .seconds(10)) {
        self.refreshBuffer = refreshBuffer
        self.usesRefreshToken = usesRefreshToken
        self.lockTTL = lockTTL
        self.lockWait = lockWait
    }
}

/// The refresh protocol: the one function the daemon, the CLI and the worker library all use.
///
/// 1. Read the record; if it already satisfies the request (fresh, or newer than the version the
///    caller saw), return it.
/// 2. Take the service lock (waiting up to ``RefreshSettings/lockWait``) and **read again**: if
///    another holder refreshed meanwhile, return that. If the lock cannot be had, return the
///    current record while it is still valid, else throw ``RefreshError/busy(service:waited:)``.
///    The provider is never called without the lock.
/// 3. Call the provider with the stored refresh token while the lock's watchdog renews the lease.
/// 4. Persist the record and a rotated refresh token atomically, fence-checked, before anything
///    else. If Redis is unreachable then, keep the token in memory and retry (the rotated token
///    is the only valid one; it is never dropped).
/// 5. The same script appends the event and publishes the change; then the lock is released.
///
/// Freshness is judged by the Redis server's clock (`TIME`), so replicas with skewed clocks agree.
public struct TokenRefresher: Sendable {
    /// What the caller wants.
    public enum Request: Sendable, Hashable {
        /// A token that is not due for refresh (refresh only when due).
        case fresh
        /// A new token, unless someone refreshed since `version` (`nil`: since the record as read now).
        case forced(seenVersion: Int64?)
        /// A token whose version is greater than this one (a worker got 401 with it).
        case newerThan(Int64)
    }

    /// Where records live.
    public let store: TokenStore
    /// The locks (prefix must be the store's prefix).
    public let locks: LockService
    /// Who refreshes: recorded in `refreshed_by` and events (`host:pid` or the replica id).
    public let replica: String
    /// Called when persisting a rotated token has to be retried (Redis unreachable). Never gets a secret.
    public let onPersistRetry: @Sendable (_ service: String, _ error: any Error) -> Void

    /// Creates a refresher.
    public init(store: TokenStore, locks: LockService, replica: String,
                onPersistRetry: @escaping @Sendable (String, any Error) -> Void = { _, _ in }) {
        self.store = store
        self.locks = locks
        self.replica = replica
        self.onPersistRetry = onPersistRetry
    }

    /// Runs the refresh protocol for `service`.
    /// - Returns: the record that satisfies `request` (possibly written by someone else).
    /// - Throws: ``RefreshError``, or ``BatonRedis/RedisError`` when Redis cannot be reached
    ///   before the provider was called.
    public func refresh(_ service: String, settings: RefreshSettings, provider: any TokenProvider,
                        request: Request = .fresh) async throws -> TokenRecord {
        var request = request
        let seen = try await store.record(service)
        if case .forced(nil) = request { request = .forced(seenVersion: seen?.version) }
        if let seen, try await isSatisfied(seen, by: request, settings: settings) { return seen }

        let lock = try locks.lock(service, options: .init(ttl: settings.lockTTL))
        let lease: LockLease
        do {
            lease = try await lock.acquire(timeout: settings.lockWait)
        } catch LockError.timedOut(_, let waited, _) {
            let now = try await store.now()
            if let current = try await store.record(service), !current.isExpired(at: now), current.status != .needsReauth {
                return current
            }
            throw RefreshError.busy(service: service, waited: waited)
        }
        do {
            let record = try await refreshHolding(lease, service: service, settings: settings, provider: provider, request: request)
            _ = try? await lease.release()
            return record
        } catch {
            _ = try? await lease.release()
            throw error
        }
    }

    private func isSatisfied(_ record: TokenRecord, by request: Request, settings: RefreshSettings) async throws -> Bool {
        switch request {
        case .fresh:
            guard record.status == .ok else { return false }
            return !record.needsRefresh(at: try await store.now(), refreshBuffer: settings.refreshBuffer)
        case .forced(let seenVersion):
            return seenVersion.map { record.version > $0 } ?? false
        case .newerThan(let version):
            return record.version > version
        }
    }

    private func refreshHolding(_ lease: LockLease, service: String, settings: RefreshSettings,
                                provider: any TokenProvider, request: Request) async throws -> TokenRecord {
        // Read again under the lock: another holder may have refreshed while we waited.
        let current = try await store.record(service)
        if let current, try await isSatisfied(current, by: request, settings: settings) { return current }
        if let current, current.status == .needsReauth {
            throw RefreshError.needsReauthorization(service: service, description: current.lastError.map { "\($0.code): \($0.description)" } ?? "marked needs_reauth")
        }

        var secret: SecretEnvelope?
        if settings.usesRefreshToken {
            secret = try await store.secret(service)
            guard secret != nil else {
                try? await store.appendEvent(.needsSeed, service: service, replica: replica)
                throw RefreshError.needsSeed(service: service)
            }
        }

        var now = try await store.now()
        let token: ProviderToken
        do {
            token = try await provider.fetchToken(service: service, refreshToken: secret?.refreshToken, now: now)
        } catch let failure as ProviderFailure {
            if case .needsReauthorization = failure, let used = secret,
               let latest = try await store.secret(service), latest.fence > used.fence {
                // Someone stored a newer refresh token while we called (an operator's seed, or a
                // holder whose lease had run out): our invalid_grant says nothing about it. Retry once.
                now = try await store.now()
                return try await fetchAndPersist(lease, service: service, current: current, secret: latest, now: now, provider: provider)
            }
            try await recordFailure(failure, lease: lease, service: service, current: current)
            throw failure.asRefreshError(service: service)
        }
        return try await persistSuccess(token, lease: lease, service: service, now: now)
    }

    private func fetchAndPersist(_ lease: LockLease, service: String, current: TokenRecord?, secret: SecretEnvelope,
                                 now: Int64, provider: any TokenProvider) async throws -> TokenRecord {
        do {
            let token = try await provider.fetchToken(service: service, refreshToken: secret.refreshToken, now: now)
            return try await persistSuccess(token, lease: lease, service: service, now: now)
        } catch let failure as ProviderFailure {
            try await recordFailure(failure, lease: lease, service: service, current: current)
            throw failure.asRefreshError(service: service)
        }
    }

    /// Writes the new record (and rotated token). Retries on connection problems without end:
    /// the rotated refresh token exists only in this process until it is written.
    private func persistSuccess(_ token: ProviderToken, lease: LockLease, service: String, now: Int64) async throws -> TokenRecord {
        var record = TokenRecord(service: service, accessToken: token.accessToken, tokenType: token.tokenType,
                                 expiresAt: token.expiresAt, scope: token.scope, version: lease.fence.value,
                                 refreshedAt: now, refreshedBy: replica)
        var pause = Duration.milliseconds(50)
        while true {
            do {
                let outcome = try await store.persist(record, secret: token.rotatedRefreshToken, fence: lease.fence.value,
                                                      event: .refreshed, replica: replica, owner: lease.owner)
                switch outcome {
                case .written(let version, _):
                    record.version = version
                    return record
                case .rejectedAsStale:
                    // A newer successful refresh exists: serve that one.
                    if let newer = try await store.record(service) { return newer }
                    return record
                }
            } catch let error as RedisError where error.isConnectionProblem {
                onPersistRetry(service, error)
                try? await Task.sleep(for: pause)
                pause = min(pause * 2, .seconds(2))
            }
        }
    }

    /// Marks the record `needs_reauth` or `refreshing_failed`, keeping its access token (served
    /// until it expires), and appends the event.
    private func recordFailure(_ failure: ProviderFailure, lease: LockLease, service: String, current: TokenRecord?) async throws {
        let now = try await store.now()
        var record = current ?? TokenRecord(service: service, accessToken: "", tokenType: "Bearer", expiresAt: 0,
                                            scope: nil, version: 0, refreshedAt: 0, refreshedBy: replica)
        let event: TokenEvent.Kind
        if case .needsReauthorization = failure {
            record.status = .needsReauth
            event = .needsReauth
        } else {
            record.status = .refreshingFailed
            event = .failed
        }
        record.lastError = .init(code: failure.code, description: failure.detail, at: now)
        _ = try await store.persist(record, secret: nil, fence: lease.fence.value, event: event, replica: replica,
                                    owner: lease.owner, errorCode: failure.code)
    }
}

extension ProviderFailure {
    func asRefreshError(service: String) -> RefreshError {
        if case .needsReauthorization(let code, let detail) = self {
            return .needsReauthorization(service: service, description: "\(code): \(detail)")
        }
        return .provider(service: service, failure: self)
    }
}
