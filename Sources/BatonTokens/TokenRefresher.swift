import BatonLock
import BatonRedis
import BatonSupport
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
    /// The longest a provider call may take: before each call the lease is extended and must
    /// have at least this much left, or the call is not made. Default: 15 seconds.
    public var requestTimeout: Duration
    /// The fingerprint of the configured client (``SecretEnvelope/clientFingerprint(tokenURL:clientID:grant:)``):
    /// written with every rotated token, and a stored token issued under another one is never
    /// used (``RefreshError/configMismatch(service:)``). `nil`: nothing checked. Default: `nil`.
    public var clientFingerprint: String?

    /// Creates settings; every parameter has the default documented on its property.
    public init(
        refreshBuffer: Duration = .seconds(60), usesRefreshToken: Bool = true,
        lockTTL: Duration = .seconds(30), lockWait: Duration = .seconds(10), requestTimeout: Duration = .seconds(15),
        clientFingerprint: String? = nil
    ) {
        self.refreshBuffer = refreshBuffer
        self.usesRefreshToken = usesRefreshToken
        self.lockTTL = lockTTL
        self.lockWait = lockWait
        self.requestTimeout = requestTimeout
        self.clientFingerprint = clientFingerprint
    }
}

/// The refresh protocol: the one function the daemon, the CLI and the worker library all use.
///
/// 1. Read the record; if it already satisfies the request (fresh, or newer than the version the
///    caller saw), return it.
/// 2. Take the service lock (waiting up to ``RefreshSettings/lockWait``) and **read again**: if
///    another holder refreshed meanwhile, return that. If the lock cannot be had, return the
///    current record while it is still valid, else throw ``RefreshError/busy(service:waited:)``.
/// 3. Before **every** provider call (the first, the one retry below, and the one try with the
///    fallback client secret after `invalid_client`) extend the lease and check that at least
///    ``RefreshSettings/requestTimeout`` of it is left; otherwise throw
///    ``RefreshError/leaseLost(service:)`` without calling. The provider is never called without
///    a live lease; the watchdog renews it while the call runs.
/// 4. A rotated refresh token is written to the local spool (``RotatedTokenSpool``) first, then
///    persisted with the record in one fenced script, retried on every error but a fence
///    rejection for as long as it takes. With ``ReplicaAcknowledgement`` asked for, a `WAIT` on
///    the same connection follows, and the persist is repeated (it is idempotent) until enough
///    replicas acknowledge, the lease still held and renewed. The spool file goes once Redis has
///    the token (and, with replicas asked for, enough replicas have it).
/// 5. `invalid_grant` for a token that someone replaced while we called (an operator's seed)
///    says nothing about the new one: retry once with it. Its rotation is persisted as the
///    successor of the secret it came from, so it wins over that seed.
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
    /// Where rotated tokens wait on disk until Redis has them; `nil` keeps them in memory only.
    public let spool: RotatedTokenSpool?
    /// How many replicas must acknowledge a rotated refresh token before the refresh that got it
    /// is done (and before a spooled one leaves the spool). Default: ``ReplicaAcknowledgement/none``.
    public let acknowledgement: ReplicaAcknowledgement
    /// Called for every failed attempt to store a rotated refresh token (each is retried) and when
    /// the spool cannot be written. Never gets a secret.
    public let onPersistRetry: @Sendable (_ service: String, _ error: any Error) -> Void
    /// Called for every attempt whose rotated token fewer replicas than required acknowledged
    /// (each is retried), and once when such a token is acknowledged after all. Never gets a secret.
    public let onReplicaAcknowledgement: @Sendable (ReplicaAcknowledgementReport) -> Void

    /// The pauses between attempts to store a rotated refresh token: from 50 ms up to
    /// ``persistRetryCap``.
    static let persistRetryBase: Duration = .milliseconds(50)
    /// The longest pause between attempts to store a rotated refresh token.
    static let persistRetryCap: Duration = .seconds(2)

    /// Creates a refresher.
    public init(
        store: TokenStore, locks: LockService, replica: String, spool: RotatedTokenSpool? = nil,
        acknowledgement: ReplicaAcknowledgement = .none,
        onPersistRetry: @escaping @Sendable (String, any Error) -> Void = { _, _ in },
        onReplicaAcknowledgement: @escaping @Sendable (ReplicaAcknowledgementReport) -> Void = { _ in }
    ) {
        self.store = store
        self.locks = locks
        self.replica = replica
        self.spool = spool
        self.acknowledgement = acknowledgement
        self.onPersistRetry = onPersistRetry
        self.onReplicaAcknowledgement = onReplicaAcknowledgement
    }

    /// Runs the refresh protocol for `service`.
    /// - Returns: the record that satisfies `request` (possibly written by someone else).
    /// - Throws: ``RefreshError``, or ``BatonRedis/RedisError`` when Redis cannot be reached
    ///   before the provider was called.
    public func refresh(
        _ service: String, settings: RefreshSettings, provider: any TokenProvider,
        request: Request = .fresh
    ) async throws -> TokenRecord {
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
            if let current = try await store.record(service), !current.isExpired(at: now),
                current.status != .needsReauth
            {
                return current
            }
            throw RefreshError.busy(service: service, waited: waited)
        }
        do {
            let record = try await refreshHolding(
                lease, service: service, settings: settings, provider: provider, request: request)
            _ = try? await lease.release()
            return record
        } catch {
            _ = try? await lease.release()
            throw error
        }
    }

    /// What ``replaySpool()`` did with this host's spooled tokens.
    public struct SpoolReplay: Sendable, Equatable {
        /// Stored (and, with replicas asked for, acknowledged by enough of them): their files are gone.
        public var stored = 0
        /// Already superseded by a newer stored token: their files are gone.
        public var superseded = 0
        /// Stored on the master, but fewer replicas than required acknowledged them: their files
        /// stay for the next replay.
        public var awaitingReplicas = 0
    }

    /// Stores the rotated tokens that processes on this host left in the spool before Redis had
    /// them (those of this store: same Redis, database and prefix) through the fenced persist, and
    /// removes each file once Redis has that token or a newer one (with
    /// ``acknowledgement`` asked for: once enough replicas acknowledged it). The first token that
    /// too few replicas acknowledge ends the round: later writes would not fare better.
    /// - Throws: the first Redis error (the files stay for the next attempt).
    @discardableResult
    public func replaySpool() async throws -> SpoolReplay {
        var replay = SpoolReplay()
        guard let spool else { return replay }
        let (entries, unreadable) = spool.claimAll()
        for problem in unreadable { onPersistRetry("(spool)", problem) }
        for (entry, claim) in entries where entry.store == store.location {
            let (outcome, acknowledged) = try await store.persist(
                nil, service: entry.service, secret: entry.refreshToken, client: entry.client, fence: entry.fence,
                usedSecret: entry.usedSecret, event: .spoolReplayed, replica: replica, owner: "",
                waitingFor: acknowledgement)
            // A replay picks up where an earlier attempt (maybe another process's) left the mark.
            var wait = ReplicaWait(service: entry.service, fence: entry.fence, marked: true)
            if let acknowledged, acknowledged < acknowledgement.replicas {
                await fellShort(&wait, acknowledged: acknowledged)
                replay.awaitingReplicas += 1
                break  // the claims left release their files as they go
            }
            await settled(wait, acknowledged: acknowledged)
            if outcome.secret == .written { replay.stored += 1 } else { replay.superseded += 1 }
            spool.remove(claim)
        }
        return replay
    }

    private func isSatisfied(_ record: TokenRecord, by request: Request, settings: RefreshSettings) async throws -> Bool
    {
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

    private func refreshHolding(
        _ lease: LockLease, service: String, settings: RefreshSettings,
        provider: any TokenProvider, request: Request
    ) async throws -> TokenRecord {
        // Read again under the lock: another holder may have refreshed while we waited.
        let current = try await store.record(service)
        if let current, try await isSatisfied(current, by: request, settings: settings) { return current }
        if let current, current.status == .needsReauth {
            throw RefreshError.needsReauthorization(
                service: service,
                description: current.lastError.map { "\($0.code): \($0.description)" } ?? "marked needs_reauth")
        }

        var secret: SecretEnvelope?
        if settings.usesRefreshToken {
            secret = try await readSecret(service)
            guard let stored = secret else {
                try? await store.appendEvent(.needsSeed, service: service, replica: replica)
                throw RefreshError.needsSeed(service: service)
            }
            if let mine = settings.clientFingerprint, let theirs = stored.client, mine != theirs {
                // Issued to another client (token_url, client_id or grant differ): using it would
                // burn it with invalid_grant. Leave the credential alone.
                throw RefreshError.configMismatch(service: service)
            }
        }

        var retried = false
        var credential = ClientCredential.primary
        while true {
            // The last Redis step before the call is the lease check: nothing may delay the call after it.
            let now = try await store.now()
            try await ensureLease(lease, service: service, settings: settings)
            do {
                let token = try await provider.fetchToken(
                    service: service, refreshToken: secret?.refreshToken, now: now, credential: credential)
                // The rotated token is stored (spooled first) before anything else touches Redis.
                let stored = try await persistSuccess(
                    token, lease: lease, service: service, now: now, usedSecret: secret?.identity,
                    client: settings.clientFingerprint)
                if credential == .fallback {
                    try? await store.appendEvent(.clientSecretFallbackUsed, service: service, replica: replica)
                }
                return stored
            } catch let failure as ProviderFailure {
                if let recovered = failure.recoveredRefreshToken {
                    // An unusable answer that still carried a rotated refresh token: keep it.
                    let outcome = try await persistDurably(
                        nil, rotated: recovered, lease: lease, service: service,
                        usedSecret: secret?.identity, client: settings.clientFingerprint)
                    if outcome.secret == .written { secret = try await readSecret(service) }
                }
                if case .configuration("invalid_client", _) = failure, credential == .primary,
                    provider.hasFallbackCredential
                {
                    // Client authentication failed before the grant was processed, so the refresh
                    // token is unspent: try the fallback secret once, through the same lease check.
                    credential = .fallback
                    continue
                }
                if case .needsReauthorization = failure, !retried, let used = secret,
                    let latest = try await store.storedSecret(service), latest.stored.identity != used.identity
                {
                    // Someone stored a newer refresh token while we called (an operator's seed):
                    // our invalid_grant says nothing about it. Retry once, under a checked lease.
                    secret = try await readSecret(service)
                    retried = true
                    continue
                }
                try await recordFailure(
                    failure, lease: lease, service: service, current: current, usedSecret: secret?.identity)
                throw failure.asRefreshError(service: service)
            }
        }
    }

    /// Checks that this replica can open the stored refresh token (if any), as a refresh would,
    /// without taking the lock: before a forced refresh takes the service's forced-refresh gate,
    /// so that a replica lacking the key does not hold it back from one that has the key.
    /// - Throws: ``RefreshError/unreadableSecret(_:)``, reported as a refresh reports it.
    public func checkSecretOpens(_ service: String) async throws {
        _ = try await readSecret(service)
    }

    /// The stored refresh token, opened. One that cannot be opened here (a key this keyring
    /// lacks, a key that does not open it, a damaged envelope) is left alone: never used, never
    /// overwritten. A missing key is reported in Redis for `baton status`.
    private func readSecret(_ service: String) async throws -> SecretEnvelope? {
        do {
            return try await store.secret(service)
        } catch let problem as TokenStoreError {
            if case .unknownKey(_, let kid) = problem {
                try? await store.reportUnknownKey(service: service, kid: kid, replica: replica)
            }
            throw RefreshError.unreadableSecret(problem)
        }
    }

    /// Extends the lease and checks that a whole provider call fits in what is left of it.
    private func ensureLease(_ lease: LockLease, service: String, settings: RefreshSettings) async throws {
        guard !lease.isLost, try await lease.extend(), lease.remaining >= settings.requestTimeout else {
            throw RefreshError.leaseLost(service: service)
        }
    }

    /// Writes the new record and rotated token (see ``persistDurably(_:rotated:lease:service:usedSecret:client:)``).
    private func persistSuccess(
        _ token: ProviderToken, lease: LockLease, service: String, now: Int64,
        usedSecret: String?, client: String?
    ) async throws -> TokenRecord {
        var record = TokenRecord(
            service: service, accessToken: token.accessToken, tokenType: token.tokenType,
            expiresAt: token.expiresAt, scope: token.scope, version: lease.fence.value,
            refreshedAt: now, refreshedBy: replica)
        switch try await persistDurably(
            record, rotated: token.rotatedRefreshToken, lease: lease, service: service,
            usedSecret: usedSecret, client: client)
        {
        case .written(let version, _, _):
            record.version = version
            return record
        case .rejectedAsStale(_, let secret):
            if secret == .rejected { throw RefreshError.rotatedTokenSuperseded(service: service) }
            // A newer successful refresh exists (our rotated token, if any, is stored): serve that one.
            if let newer = try await store.record(service) { return newer }
            return record
        }
    }

    /// Persists `record` (or nothing but the secret) with a rotated refresh token. The token is
    /// spooled to disk first; every error but a fence rejection is retried, with backoff, for as
    /// long as it takes: the rotated token exists only here (and in the spool) until Redis has it.
    /// With ``acknowledgement`` asked for, a rotated token that too few replicas acknowledged is
    /// persisted again (idempotent) and waited for again, while this lease holds.
    /// - Throws: ``RefreshError/replicasNotAcknowledged(service:acknowledged:required:)`` when
    ///   the lease is lost before enough replicas acknowledged, and `CancellationError` when the
    ///   caller is cancelled, both only once the token is spooled: the spool file stays for a
    ///   replay (which waits for replicas too).
    private func persistDurably(
        _ record: TokenRecord?, rotated: String?, lease: LockLease, service: String,
        usedSecret: String?, client: String?
    ) async throws -> TokenStore.PersistOutcome {
        var spooled: RotatedTokenSpool.Claim?
        if let rotated, let spool {
            do {
                spooled = try spool.write(
                    .init(
                        store: store.location, service: service, fence: lease.fence.value,
                        usedSecret: usedSecret, refreshToken: rotated, client: client))
            } catch {
                onPersistRetry(service, error)  // kept in memory and retried below all the same
            }
        }
        // Only a rotated token needs replicas: everything else can be had again from the provider.
        let acknowledgement = rotated == nil ? ReplicaAcknowledgement.none : self.acknowledgement
        var wait = ReplicaWait(service: service, fence: lease.fence.value, marked: false)
        var backoff = Backoff(base: Self.persistRetryBase, cap: Self.persistRetryCap)
        while true {
            let written: (outcome: TokenStore.PersistOutcome, acknowledged: Int?)
            do {
                // Detached: a cancelled caller (a shutdown past its grace) must not drop the write
                // of a token that exists nowhere else; the loop decides when to stop.
                let (store, replica, fence, owner) = (store, replica, lease.fence.value, lease.owner)
                written = try await Task.detached {
                    try await store.persist(
                        record, service: service, secret: rotated, client: client, fence: fence,
                        usedSecret: usedSecret, event: record == nil ? .recovered : .refreshed,
                        replica: replica, owner: owner, waitingFor: acknowledgement)
                }.value
            } catch let error as RedisError where rotated != nil || error.isConnectionProblem {
                onPersistRetry(service, error)
                if Task.isCancelled && spooled != nil { throw CancellationError() }  // the spool keeps it
                await Backoff.sleepIgnoringCancellation(backoff.next())
                continue
            }
            if let acknowledged = written.acknowledged, acknowledged < acknowledgement.replicas {
                await fellShort(&wait, acknowledged: acknowledged)
                if Task.isCancelled && spooled != nil { throw CancellationError() }  // the spool keeps it
                // Abandoned only when the spool keeps the token; with no spool file this process
                // holds its only other copy, so it goes on (the fence keeps a late write safe).
                if await !stillHeld(lease) && spooled != nil {
                    throw RefreshError.replicasNotAcknowledged(
                        service: service, acknowledged: acknowledged, required: acknowledgement.replicas)
                }
                await Backoff.sleepIgnoringCancellation(backoff.next())
                continue
            }
            await settled(wait, acknowledged: written.acknowledged)
            if let spooled { spool?.remove(spooled) }
            return written.outcome
        }
    }

    /// Whether `lease` still holds the lock, extending it on the way (the watchdog does too; this
    /// keeps a long wait for replicas from depending on it alone). A Redis error says nothing
    /// about the lease: it counts as held until the watchdog finds it lost.
    private func stillHeld(_ lease: LockLease) async -> Bool {
        guard !lease.isLost else { return false }
        do {
            return try await lease.extend()
        } catch {
            return !lease.isLost
        }
    }

    /// Marks the record `needs_reauth` or `refreshing_failed`, keeping its access token (served
    /// until it expires), and appends the event. Refused (``RefreshError/secretReplaced(service:)``)
    /// when the stored refresh token is no longer the one the failed call used: the failure says
    /// nothing about the new one.
    private func recordFailure(
        _ failure: ProviderFailure, lease: LockLease, service: String, current: TokenRecord?,
        usedSecret: String?
    ) async throws {
        let now = try await store.now()
        var record =
            current
            ?? TokenRecord(
                service: service, accessToken: "", tokenType: "Bearer", expiresAt: 0,
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
        let outcome = try await store.persist(
            record, service: service, secret: nil, fence: lease.fence.value, usedSecret: usedSecret,
            event: event, replica: replica, owner: lease.owner, errorCode: failure.code)
        if outcome.secret == .rejected { throw RefreshError.secretReplaced(service: service) }
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
