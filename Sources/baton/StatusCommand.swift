import BatonCommandLine
import BatonConfig
import BatonCoordinator
import BatonLock
import BatonMetrics
import BatonRedis
import BatonSupport
import BatonTokens
import Foundation

/// `baton status [SVC...] [--json]`: every service's state as Redis holds it, and the replicas
/// that are alive. Never prints a token.
enum StatusCommand {
    static let specification = CommandSpecification(
        name: "status", usage: ["baton status [SVC...] [--json] \(ConnectionOptions.tokens.group.synopsis)"],
        options: [.flag("json")], groups: [ConnectionOptions.tokens.group], positionals: 0...1000,
        discussion: """
            One line per known service: status, version, time to expiry, when the next refresh is
            due, failed attempts since the last success, who refreshed it, and a note (the last
            error, or the lock holder while a refresh runs). Then the `baton serve` replicas whose
            heartbeat is alive, with their version and uptime. Never prints a token.

            Status is ok, expired, refreshing_failed, needs_reauth, seeded (a refresh token but no
            record yet), needs_seed, config_mismatch (with a configuration: the stored refresh token
            was seeded for another client than the one configured, so replicas with this
            configuration leave it alone), corrupt_record (the record key holds something that is
            not a record), unknown_key (the stored refresh token is encrypted with a key that a
            replica, or this host's keyring, lacks), or awaiting_replicas (a rotated refresh token
            is on the Redis master but fewer replicas than persist_replicas acknowledged it).

            --json prints one JSON array, one object per service; README "baton status --json"
            documents every field. The replicas are not in it: `baton status --json` keeps the
            shape scripts already read.
            """)

    /// Failure events counted back to the last success, at most this many.
    static let failureWindow = 64

    static func run(_ words: [String]) async throws -> ExitCode {
        guard let arguments = try specification.parseUnlessHelp(words) else { return .success }
        let context = try CommandContext(arguments)
        defer { context.shutDown() }
        var services = arguments.positionals
        if services.isEmpty { services = try await context.store.services() }
        if services.isEmpty && !arguments.has("json") {
            Terminal.out(
                "no services under prefix '\(context.prefix)' yet: seed one with `baton seed SVC --refresh-token-file PATH`"
            )
            return .success
        }
        let rows = try await serviceRows(services, context: context)
        if arguments.has("json") {
            let data = try JSONSerialization.data(withJSONObject: rows, options: [.sortedKeys])
            Terminal.out(String(decoding: data, as: UTF8.self))
            return .success
        }
        printTable(rows)
        Terminal.out("")
        Terminal.out(replicaSummary(try await replicas(context: context)))
        return .success
    }

    // MARK: - Reading

    /// One JSON object per service (the `--json` schema, README "baton status --json").
    static func serviceRows(_ services: [String], context: CommandContext) async throws -> [[String: Any]] {
        let store = context.store
        let now = try await store.now()
        // Batched: a status of thousands of services is a few pipelined round trips, not several per service.
        let (records, unreadableRecords) = try await store.readRecords(services)
        let keys = try services.map { try store.keys($0) }
        let secrets = try await context.client.pipeline(keys.map { RedisCommand("GET", $0.secret) })
        let locks = try await context.client.pipeline(
            keys.flatMap { [RedisCommand("GET", $0.lock.lock), RedisCommand("PTTL", $0.lock.lock)] })
        let events = try await context.client.pipeline(
            keys.map { RedisCommand("XREVRANGE", $0.events, "+", "-", "COUNT", failureWindow) })
        let awaiting = try await store.awaitingReplicas(services)
        let keyReports = try await store.unknownKeyReports(services)
        var rows: [[String: Any]] = []
        for (index, service) in services.enumerated() {
            let record = records[service]
            let secretReply = secrets[index]
            let hasSecret = !secretReply.isNull
            // With a configuration: a token issued to another client than the configured one is
            // refused by the replicas, and shown as such here.
            let stored = secretReply.bytes.flatMap { try? SecretEnvelope.decode($0, service: service) }
            let configured = context.configuration?.service(service)
            let mismatch =
                configured != nil && stored?.client != nil && stored?.client != configured?.clientFingerprint
            // Replicas that reported lacking the key the stored token is sealed under (a report
            // about an older envelope no longer applies), and this host's own keyring.
            let kid = stored?.kid
            var lacking = (keyReports[service] ?? [:]).filter { $0.value == kid }.map(\.key).sorted()
            if let kid, let keyring = context.encryption?.keyring, keyring.key(kid: kid) == nil {
                lacking.append(CommandContext.processLabel)
            }
            // The same decision as `baton_service_status` (one place: ServiceStatus.classify).
            let state = ServiceStatus.classify(
                record: record, corruptRecord: unreadableRecords[service] != nil, hasSecret: hasSecret,
                lacksKey: !lacking.isEmpty, clientMismatch: mismatch, awaitingReplicas: awaiting[service] != nil,
                now: now
            ).rawValue
            var row: [String: Any] = [
                "service": service, "status": state, "has_refresh_token": hasSecret,
                "consecutive_failures": consecutiveFailures(events[index]),
            ]
            if let stored { row["kid"] = stored.kid ?? "none" }
            if let reason = unreadableRecords[service] { row["corrupt_record"] = reason }
            if !lacking.isEmpty { row["unknown_key"] = ["kid": kid ?? "", "replicas": lacking] }
            if let owner = locks[2 * index].string {
                row["lock"] = ["holder": LockOwner.label(of: owner), "ttl_ms": locks[2 * index + 1].integer ?? -1]
            }
            if let record {
                row["version"] = record.version
                row["refreshed_by"] = record.refreshedBy
                row["refreshed_at"] = record.refreshedAt
                let hasToken = !record.accessToken.isEmpty && record.expiresAt > 0
                row["has_access_token"] = hasToken
                if hasToken {
                    row["expires_in_ms"] = record.expiresAt - now
                    let buffer = configured?.refreshBuffer ?? ServiceConfiguration.defaultRefreshBuffer
                    let due = record.refreshDueAt(refreshBuffer: buffer)
                    row["next_refresh_at"] = due
                    row["next_refresh_in_ms"] = max(0, due - now)
                }
                if let error = record.lastError {
                    row["last_error"] = ["code": error.code, "description": error.description, "at": error.at]
                }
            } else {
                row["has_access_token"] = false
            }
            if let waiting = awaiting[service] {
                row["awaiting_replicas"] = [
                    "required": waiting.required, "acknowledged": waiting.acknowledged, "since": waiting.since,
                    "waiting_ms": max(0, now - waiting.since), "attempts": waiting.attempts,
                    "replica": waiting.replica, "fence": waiting.fence,
                ]
            }
            rows.append(row)
        }
        return rows
    }

    /// Failed attempts (`failed` and `needs_reauth` events) since the newest success (`refreshed`,
    /// `seeded`, `recovered`), counted back through at most ``failureWindow`` events.
    static func consecutiveFailures(_ reply: RESPValue) -> Int {
        var failures = 0
        for entry in reply.array ?? [] {
            switch TokenEvent(streamEntry: entry)?.kind {
            case .refreshed?, .seeded?, .recovered?: return failures
            case .failed?, .needsReauth?: failures += 1
            default: continue
            }
        }
        return failures
    }

    /// A live `baton serve` replica, from its heartbeat.
    struct Replica {
        let name: String
        let version: String?
        let startedAt: Int64?
        let alive: Bool
    }

    /// The replicas registered to take forced-refresh requests, and whether each heartbeat lives.
    static func replicas(context: CommandContext) async throws -> (replicas: [Replica], now: Int64) {
        let prefix = context.prefix
        let names = (try await context.client.send("SMEMBERS", TokenKeys.requestProcessors(prefix: prefix)).array ?? [])
            .compactMap(\.string).sorted()
        let beats = try await context.client.pipeline(
            names.map { RedisCommand("GET", TokenKeys.replicaHeartbeat(prefix: prefix, replica: $0)) })
        let now = try await context.store.now()
        let replicas = zip(names, beats).map { name, beat -> Replica in
            let object = beat.bytes.flatMap { try? JSONSerialization.jsonObject(with: Data($0)) as? [String: Any] }
            return Replica(
                name: name, version: object?["version"] as? String,
                startedAt: (object?["started_at"] as? NSNumber)?.int64Value, alive: !beat.isNull)
        }
        return (replicas, now)
    }

    // MARK: - Printing

    static func printTable(_ rows: [[String: Any]]) {
        let pad = DisplayFormat.column
        Terminal.out(
            pad("SERVICE", 24) + pad("STATUS", 18) + pad("VERSION", 9) + pad("EXPIRES IN", 13)
                + pad("NEXT REFRESH", 14) + pad("FAILS", 6) + pad("REFRESHED BY", 24) + "NOTE")
        for row in rows {
            let hasToken = row["has_access_token"] as? Bool ?? false
            let expires =
                (row["expires_in_ms"] as? Int64).map { DisplayFormat.signedAge(milliseconds: $0) }
                ?? (hasToken ? "-" : "no token yet")
            let next =
                (row["next_refresh_in_ms"] as? Int64).map {
                    $0 == 0 ? "due now" : "in " + DisplayFormat.age(milliseconds: $0)
                } ?? "-"
            let note =
                (row["corrupt_record"] as? String).map { "record unreadable (\($0)): delete the key, or re-seed" }
                ?? unknownKeyNote(row["unknown_key"] as? [String: Any])
                ?? awaitingNote(row["awaiting_replicas"] as? [String: Any])
                ?? lockNote(row["lock"] as? [String: Any])
                ?? (row["last_error"] as? [String: Any])?["code"] as? String ?? ""
            Terminal.out(
                pad(row["service"] as? String ?? "", 24) + pad(row["status"] as? String ?? "", 18)
                    + pad((row["version"] as? Int64).map(String.init) ?? "-", 9) + pad(expires, 13) + pad(next, 14)
                    + pad(String(row["consecutive_failures"] as? Int ?? 0), 6)
                    + pad(row["refreshed_by"] as? String ?? "-", 24) + note)
        }
    }

    /// `replicas: replica-1 (0.13.0, up 5m), replica-2 (0.13.0, up 5m)` or that none is alive.
    static func replicaSummary(_ found: (replicas: [Replica], now: Int64)) -> String {
        let alive = found.replicas.filter(\.alive)
        let silent = found.replicas.filter { !$0.alive }.map(\.name)
        var line =
            alive.isEmpty
            ? "replicas: none alive (no `baton serve` heartbeat in the last 15 s)"
            : "replicas: "
                + alive.map { replica in
                    let details = [
                        replica.version,
                        replica.startedAt.map { "up " + DisplayFormat.age(milliseconds: found.now - $0) },
                    ].compactMap { $0 }
                    return details.isEmpty ? replica.name : "\(replica.name) (\(details.joined(separator: ", ")))"
                }.joined(separator: ", ")
        if !silent.isEmpty { line += "; registered but silent: " + silent.joined(separator: ", ") }
        return line
    }

    /// The note of a service whose refresh lock is held: who holds it, for how long more.
    static func lockNote(_ lock: [String: Any]?) -> String? {
        guard let lock, let holder = lock["holder"] as? String else { return nil }
        let ttl = (lock["ttl_ms"] as? Int64).flatMap { $0 > 0 ? DisplayFormat.age(milliseconds: $0) : nil }
        return "refreshing: lock held by \(holder)" + (ttl.map { " (\($0) left)" } ?? "")
    }

    /// The note of a service whose rotated refresh token waits for replicas.
    static func awaitingNote(_ waiting: [String: Any]?) -> String? {
        guard let waiting, let required = waiting["required"] as? Int,
            let acknowledged = waiting["acknowledged"] as? Int,
            let waited = waiting["waiting_ms"] as? Int64, let attempts = waiting["attempts"] as? Int,
            let replica = waiting["replica"] as? String
        else { return nil }
        return
            "awaiting \(required) replica acknowledgement\(required == 1 ? "" : "s") for \(DisplayFormat.age(milliseconds: waited)) (\(acknowledged) so far, \(attempts) attempt\(attempts == 1 ? "" : "s") by \(replica))"
    }

    /// The note of an `unknown_key` service: which key, and who lacks it.
    static func unknownKeyNote(_ report: [String: Any]?) -> String? {
        guard let report, let kid = report["kid"] as? String, let replicas = report["replicas"] as? [String] else {
            return nil
        }
        return "key '\(kid)' missing on \(replicas.joined(separator: ", "))"
    }
}
