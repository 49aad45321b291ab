import BatonRedis

/// The `awaiting-replicas` mark: where a rotated refresh token that fewer replicas than
/// `persist_replicas` acknowledged shows up for `baton status` on any host.
///
/// It lives in Redis (the master), next to the service's other keys, because the process that
/// waits and the one that asks are different processes, often on different hosts. The mark is
/// written after each attempt that fell short, with a TTL (``ReplicaAcknowledgement/markLifetime``)
/// so that it goes away on its own when the process that waited is gone; it is cleared when the
/// token is acknowledged or superseded. When the master refuses writes altogether (`NOREPLICAS`
/// with `min-replicas-to-write`), no mark can be written: the `persist_retry` log lines and the
/// spool tell that story instead.
extension TokenStore {
    /// Marks `service`'s rotated token of `fence` as waiting (see `TokenScripts.markAwaitingReplicas`).
    /// - Returns: `since` (ms, server clock), the attempts counted so far (this one included),
    ///   and the server's clock now.
    func markAwaitingReplicas(
        _ service: String, replica: String, fence: Int64, required: Int, acknowledged: Int, lifetime: Duration
    ) async throws -> (since: Int64, attempts: Int, now: Int64) {
        let key = try keys(service).awaitingReplicas
        let reply = try await client.run(
            TokenScripts.markAwaitingReplicas, keys: [key],
            arguments: [replica, fence, required, acknowledged, max(1, lifetime.milliseconds)])
        guard let parts = reply.array, parts.count == 3, let since = parts[0].integer,
            let attempts = parts[1].integer, let now = parts[2].integer
        else {
            throw RedisError.unexpectedReply(command: "awaiting-replicas mark script", reply: reply.description)
        }
        return (since, Int(attempts), now)
    }

    /// Clears the mark if it is still `replica`'s of `fence` (see `TokenScripts.clearAwaitingReplicas`).
    /// - Returns: the attempts the mark counted and how long it had been waiting, or `nil` when
    ///   there was no such mark.
    func clearAwaitingReplicas(_ service: String, replica: String, fence: Int64) async throws
        -> (attempts: Int, waited: Duration)?
    {
        let reply = try await client.run(
            TokenScripts.clearAwaitingReplicas, keys: [keys(service).awaitingReplicas], arguments: [replica, fence])
        guard let parts = reply.array, parts.count == 3, let attempts = parts[0].integer,
            let since = parts[1].integer, let now = parts[2].integer
        else { return nil }
        return (Int(attempts), .milliseconds(max(0, now - since)))
    }

    /// The rotated tokens waiting for replica acknowledgements, by service, read with pipelined
    /// `HMGET`s. Services with none are absent.
    public func awaitingReplicas(_ services: [String], batchSize: Int = 500) async throws -> [String: AwaitingReplicas]
    {
        var found: [String: AwaitingReplicas] = [:]
        for start in stride(from: 0, to: services.count, by: batchSize) {
            let batch = Array(services[start..<min(services.count, start + batchSize)])
            let replies = try await client.pipeline(
                try batch.map {
                    RedisCommand("HMGET", arguments: [try keys($0).awaitingReplicas] + AwaitingReplicas.fieldNames)
                })
            for (service, reply) in zip(batch, replies) {
                if let fields = reply.array, let waiting = AwaitingReplicas(fields: fields) { found[service] = waiting }
            }
        }
        return found
    }
}
