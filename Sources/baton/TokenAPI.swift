import BatonConfig
import BatonCoordinator
import BatonHTTP
import BatonRedis
import BatonSupport
import BatonTokens
import Foundation

/// The HTTP token API of `baton serve` (README "HTTP token API"), for workers that do not speak
/// Redis:
///
/// - `GET /v1/tokens/{service}[?wait=10s]`: 200 with the stored record while its access token is
///   valid; otherwise waits (default ``TokenAPIRequest/defaultWait``, at most
///   ``TokenAPIRequest/maxWait``) for the coordinator to write one.
/// - `POST /v1/tokens/{service}/refresh[?wait=10s]` `{"version": N}`: the first record newer than
///   N, asked for through the forced-refresh queue (`LPUSH prefix:refresh-requests
///   {"service":...,"version":N}`) exactly as `baton get --newer-than` does, so the coordinator's
///   guarantees hold: one provider call per version, at most one per interval.
///
/// Answers: 401 (with `WWW-Authenticate: Bearer`) for a missing or unknown key; 404 alike for an
/// unknown service and one outside the key's scope; 409 with the status when a person must act
/// (``TokenAPIState/needsAttention``); 503 when no usable token came within the wait or Redis
/// failed; 400/405/413 for bad requests. The log gets one line per request with the method,
/// path, status and key name: never a key nor a token.
final class TokenAPI: Sendable {
    private let keys: TokenAPIKeys
    private let store: TokenStore
    private let coordinator: Coordinator
    private let keyring: Keyring?
    private let changes: TokenChangeWaiters
    private let log: StructuredLog

    private init(
        keys: TokenAPIKeys, client: RedisClient, prefix: String, coordinator: Coordinator, keyring: Keyring?,
        log: StructuredLog
    ) {
        self.keys = keys
        // Reads records only: the refresh token's envelope header, never the token itself.
        store = TokenStore(client: client, prefix: prefix, encryption: .none)
        self.coordinator = coordinator
        self.keyring = keyring
        changes = TokenChangeWaiters(client: client, prefix: prefix)
        self.log = log
    }

    /// Adds the token API's routes to `router` when `http.api_keys` names at least one key;
    /// returns the API (to ``stop()``), or `nil` when it is off.
    /// - Throws: ``BatonSupport/CryptoError`` when no random bytes can be drawn.
    static func register(
        on router: HTTPRouter, configuration: BatonConfiguration, client: RedisClient, prefix: String,
        coordinator: Coordinator, log: StructuredLog
    ) throws -> TokenAPI? {
        let keys = try TokenAPIKeys(configuration.http.apiKeys)
        guard !keys.isEmpty, configuration.http.listen != nil else { return nil }
        let api = TokenAPI(
            keys: keys, client: client, prefix: prefix, coordinator: coordinator,
            keyring: configuration.encryption.keyring, log: log)
        router.add([.get, .post], prefix: TokenAPIRequest.prefix) { request in await api.handle(request) }
        log.log(.info, "token_api_enabled", ["keys": .number(Int64(configuration.http.apiKeys.count))])
        return api
    }

    /// Stops the change subscription.
    func stop() { changes.stop() }

    private func handle(_ request: HTTPRequest) async -> HTTPResponse {
        let caller = keys.caller(authorization: request.header("Authorization"))
        let response = await answer(request, caller: caller)
        log.log(
            .debug, "token_api_request",
            [
                "method": .text(String(request.method.rawValue.prefix(10))),
                "path": .text(String(request.path.prefix(200))),
                "status": .number(Int64(response.status)), "key": .text(caller?.name ?? "-"),
            ])
        return response
    }

    private func answer(_ request: HTTPRequest, caller: TokenAPIKeys.Caller?) async -> HTTPResponse {
        guard let caller else {
            return Self.error(
                401, "unauthorized", "send Authorization: Bearer KEY with a key from http.api_keys",
                headers: [("WWW-Authenticate", #"Bearer realm="baton""#)])
        }
        // Out of scope and unknown get the same answer, so that a key learns no other names.
        guard let (service, refresh) = TokenAPIRequest.route(request.path), caller.scope.allows(service),
            (try? store.keys(service)) != nil
        else { return Self.notFound }
        let parsed: TokenAPIRequest
        do {
            parsed = try TokenAPIRequest(request, service: service, refresh: refresh)
        } catch {
            return Self.error(
                error.status, error.error, error.message, headers: error.allow.map { [("Allow", $0)] } ?? [])
        }
        do {
            switch parsed {
            case .token(let service, let wait):
                return try await serve(service, wait: wait, asking: nil) { record, now in !record.isExpired(at: now) }
            case .refresh(let service, let version, let wait):
                // A failed refresh writes a newer version too, holding the old token: only a
                // success answers.
                return try await serve(service, wait: wait, asking: version) { record, now in
                    record.version > version && record.status == .ok && !record.isExpired(at: now)
                }
            }
        } catch {
            log.log(.warn, "token_api_redis_failed", service: service, ["message": .text(String(describing: error))])
            return Self.error(
                503, "redis_unavailable", "Redis did not answer; try again", headers: [("Retry-After", "1")])
        }
    }

    /// Answers with the first record `isUsable` accepts, reading again at each change and at least
    /// once a second until `wait` has passed; with `asking`, asks for a refresh newer than it
    /// (once, after the first read found none).
    private func serve(
        _ service: String, wait: Duration, asking version: Int64?,
        until isUsable: (TokenRecord, Int64) -> Bool
    ) async throws -> HTTPResponse {
        let keys = try store.keys(service)
        // Registered before the first read, so that no change between a read and a wait is missed.
        let waiter = changes.add(keys)
        defer { changes.remove(waiter) }
        let configured = await coordinator.configuredClients()
        let clock = ContinuousClock()
        let deadline = clock.now + wait
        var asked = false
        while true {
            let state = try await TokenAPIState.read(
                service, store: store, configured: configured, keyring: keyring)
            guard state.exists else { return Self.notFound }
            if let record = state.record, isUsable(record, state.now) { return Self.record(record) }
            if TokenAPIState.needsAttention.contains(state.status) { return Self.attention(service, state) }
            if let version, !asked {
                try await requestRefresh(service, newerThan: version)
                asked = true
            }
            let remaining = deadline - clock.now
            if remaining <= .zero { return Self.timedOut(service, state, waited: wait) }
            await waiter.wakeup.wait(upTo: min(remaining, .seconds(1)))
        }
    }

    /// The forced-refresh request workers send (`baton get --newer-than`, ``BatonTokens/TokenClient``).
    private func requestRefresh(_ service: String, newerThan version: Int64) async throws {
        let entry = RefreshRequestEntry.encode(service: service, version: version)
        try await store.client.send("LPUSH", TokenKeys.refreshRequests(prefix: store.prefix), entry)
    }

    // MARK: - Answers

    private static let notFound = error(404, "not_found", "no such service")

    private static func record(_ record: TokenRecord) -> HTTPResponse {
        guard let body = try? record.jsonBytes() else { return error(500, "internal", "cannot encode the record") }
        return HTTPResponse(
            status: 200, headers: [("Content-Type", "application/json"), ("Cache-Control", "no-store")], body: body)
    }

    private static func attention(_ service: String, _ state: TokenAPIState) -> HTTPResponse {
        let advice: String
        switch state.status {
        case .needsReauth:
            advice = "re-authorise it with the provider, then run `baton seed \(service) --refresh-token-file PATH`"
        case .needsSeed: advice = "seed it: `baton seed \(service) --refresh-token-file PATH`"
        case .configMismatch: advice = "its refresh token was issued to another client than the configured one"
        case .unknownKey: advice = "its refresh token is sealed under a key a replica lacks: add the key to the keyring"
        default: advice = "its record is not a token record: see `baton status \(service)`"
        }
        return Self.state(409, "needs_attention", service, state, "'\(service)' is \(state.status.rawValue): \(advice)")
    }

    private static func timedOut(_ service: String, _ state: TokenAPIState, waited: Duration) -> HTTPResponse {
        var response = Self.state(
            503, "timeout", service, state,
            "no usable token for '\(service)' within \(waited.shortDescription); the coordinator may be down or failing (see `baton status \(service)`)"
        )
        response.headers.append(("Retry-After", "1"))
        return response
    }

    /// A status answer: the service, its status, and the record's version and last error (never its token).
    private static func state(
        _ status: Int, _ error: String, _ service: String, _ state: TokenAPIState, _ message: String
    ) -> HTTPResponse {
        var body: [String: JSONAnswer] = [
            "error": .text(error), "service": .text(service), "status": .text(state.status.rawValue),
            "message": .text(message),
        ]
        if let record = state.record {
            body["version"] = .number(record.version)
            if let last = record.lastError {
                body["last_error"] = .object(["code": .text(last.code), "description": .text(last.description)])
            }
        }
        return .json(status, body)
    }

    private static func error(
        _ status: Int, _ error: String, _ message: String, headers: [(name: String, value: String)] = []
    ) -> HTTPResponse {
        var response = HTTPResponse.json(status, ["error": error, "message": message])
        response.headers += headers
        return response
    }

    /// The JSON values of an error answer.
    private enum JSONAnswer: Encodable {
        case text(String)
        case number(Int64)
        case object([String: JSONAnswer])

        func encode(to encoder: any Encoder) throws {
            var container = encoder.singleValueContainer()
            switch self {
            case .text(let text): try container.encode(text)
            case .number(let number): try container.encode(number)
            case .object(let object): try container.encode(object)
            }
        }
    }
}
