import BatonRedis
import BatonTokens

/// The Redis keys of one service's alerts. Both carry the service's hash tag `{svc}` (one Cluster
/// slot with its token record, which ``AlertScripts/transition`` reads).
struct AlertKeys: Sendable {
    /// `prefix:{svc}:alert`, a hash: `state` (the condition last alerted: `ok`, `needs_reauth`,
    /// ...), `seq` (events so far), `delivered` (the last delivered `seq`) and `body:N` (the JSON of
    /// each event not yet delivered).
    let alert: String
    /// `prefix:{svc}:alert-claim`: the replica delivering this service's events, with a lease (PX).
    let claim: String
    /// `prefix:{svc}:token`: the token record, whose status confirms an event atomically.
    let token: String

    init(_ keys: TokenKeys) {
        alert = "\(keys.prefix):{\(keys.service)}:alert"
        claim = "\(keys.prefix):{\(keys.service)}:alert-claim"
        token = keys.token
    }

    /// `prefix:alerts-pending`: a set of services that may have undelivered events, swept by every
    /// replica so that another one takes over the events of a replica that died. Another slot than
    /// the per-service keys: written by separate commands (see ``AlertNotifier``).
    static func pending(prefix: String) -> String { "\(prefix):alerts-pending" }
}

/// The Lua scripts of alert deduplication and delivery (see docs/ARCHITECTURE.md "Alert webhooks").
enum AlertScripts {
    /// Records a change of a service's alerted condition, once across all replicas.
    ///
    /// KEYS: alert hash, claim, token record. ARGV: 1 the new condition (`ok` or an alert state);
    /// 2 the event's JSON, in which `@@SEQ@@` becomes the event's number and `@@PREVIOUS@@` the
    /// condition it replaces; 3 this replica; 4 the claim's lease (ms); 5 the token-record status
    /// the condition requires (`""`: none). The record must still say so now, which drops a stale
    /// observation (a failure seen before another replica's success, or the reverse).
    ///
    /// Returns `{0, 0}` when nothing changed (same condition, or the record disagrees), else
    /// `{seq, claimed}`: the event's number, and 1 when this replica took the claim (it delivers).
    static let transition = RedisScript(
        """
        local current = redis.call('HGET', KEYS[1], 'state') or 'ok'
        if current == ARGV[1] then return {0, 0} end
        if ARGV[5] ~= '' then
          local raw = redis.call('GET', KEYS[3])
          if not raw then return {0, 0} end
          local ok, record = pcall(cjson.decode, raw)
          if not ok or type(record) ~= 'table' or record.status ~= ARGV[5] then return {0, 0} end
        end
        local seq = redis.call('HINCRBY', KEYS[1], 'seq', 1)
        local body = string.gsub(ARGV[2], '@@SEQ@@', tostring(seq), 1)
        body = string.gsub(body, '@@PREVIOUS@@', current, 1)
        redis.call('HSET', KEYS[1], 'state', ARGV[1], 'body:' .. seq, body)
        local claimed = 0
        if redis.call('SET', KEYS[2], ARGV[3], 'NX', 'PX', ARGV[4]) then claimed = 1 end
        return {seq, claimed}
        """)

    /// The claim holder's next event to deliver, oldest first; renews the lease, or releases the
    /// claim when nothing is left (atomically with the check, so an event recorded meanwhile is
    /// either seen here or claimed by its recorder).
    ///
    /// KEYS: alert hash, claim. ARGV: 1 this replica, 2 the lease (ms).
    /// Returns `{seq, body}`, `{0}` when all is delivered (claim released), `{-1}` when the claim is
    /// not ours (lease ran out).
    static let next = RedisScript(
        """
        if redis.call('GET', KEYS[2]) ~= ARGV[1] then return {-1} end
        local seq = tonumber(redis.call('HGET', KEYS[1], 'seq') or '0')
        local delivered = tonumber(redis.call('HGET', KEYS[1], 'delivered') or '0')
        for n = delivered + 1, seq do
          local body = redis.call('HGET', KEYS[1], 'body:' .. n)
          if body then
            redis.call('PEXPIRE', KEYS[2], ARGV[2])
            return {n, body}
          end
        end
        redis.call('DEL', KEYS[2])
        return {0}
        """)

    /// Marks event `seq` delivered: drops its body and raises `delivered`.
    ///
    /// KEYS: alert hash. ARGV: 1 seq. Returns 1.
    static let delivered = RedisScript(
        """
        redis.call('HDEL', KEYS[1], 'body:' .. ARGV[1])
        local delivered = tonumber(redis.call('HGET', KEYS[1], 'delivered') or '0')
        if tonumber(ARGV[1]) > delivered then redis.call('HSET', KEYS[1], 'delivered', ARGV[1]) end
        return 1
        """)

    /// Takes over a service's undelivered events when nobody holds its claim (its deliverer died,
    /// and the lease ran out).
    ///
    /// KEYS: alert hash, claim. ARGV: 1 this replica, 2 the lease (ms).
    /// Returns 1 claimed, 0 someone else holds it, -1 nothing undelivered.
    static let adopt = RedisScript(
        """
        local seq = tonumber(redis.call('HGET', KEYS[1], 'seq') or '0')
        local delivered = tonumber(redis.call('HGET', KEYS[1], 'delivered') or '0')
        if seq <= delivered then return -1 end
        if redis.call('SET', KEYS[2], ARGV[1], 'NX', 'PX', ARGV[2]) then return 1 end
        return 0
        """)
}
