import BatonRedis

/// The token layer's Lua scripts: each write of a record or a refresh token is one atomic,
/// fence-checked script that also appends the audit event and publishes the change.
///
/// Every key a script touches is declared in KEYS, and all of them carry the service's hash tag
/// `{svc}`, so each script runs on one Redis Cluster slot. The service registry
/// (`prefix:services`, another slot) is updated by the caller afterwards (`SADD`, idempotent).
enum TokenScripts {
    /// Persist the outcome of a refresh (or a status change) under a fence.
    ///
    /// KEYS: token, secret, events, fence counter, lock.
    /// ARGV: 1 fence of the writer's lease; 2 record JSON (its `"version"` field is the placeholder
    /// `"@@VERSION@@"`) or `""` to write the secret alone; 3 secret envelope JSON (its `"fence"`
    /// also the placeholder) or `""`; 4 event name; 5 replica; 6 change channel; 7 lock owner;
    /// 8 error code or `""`; 9 service name; 10 the fence of the stored secret the provider call
    /// used (`""`: none).
    ///
    /// Rules, in this order:
    /// - **The secret** (a rotated refresh token) replaces the stored one only if the stored
    ///   secret is *the one it was rotated from* (its fence is ARGV[10]: the provider has just
    ///   invalidated it, so ours is the only valid token) or is older than the writer's fence.
    ///   Otherwise a newer secret exists (an operator's seed, or another holder's rotation) and
    ///   ours is rejected, and so is the whole write: `{0, storedVersion, 0, -1}`. A failure
    ///   record never licenses an older secret.
    /// - **The record** is rejected when a newer *successful* record exists (`{0, thatVersion,
    ///   0, secretWritten}`): a stale holder never overwrites newer state. A newer *failure*
    ///   record (written by a holder that used the token we just rotated) is overwritten.
    /// - The version of what is written is the writer's fence, or a fresh `INCR` of the fence
    ///   counter when the stored record or secret is already at or above it, so versions and
    ///   secret fences only ever grow.
    /// - Appends `event` to the stream (`MAXLEN ~ 1000`) and publishes the version on the change
    ///   channel.
    ///
    /// Returns `{written, version, lockHeld, secret}`: `written` 1 when the record (or, with no
    /// record, the secret) was written; `secret` 1 written, 0 none offered, -1 rejected.
    static let persist = RedisScript("""
        local fence = tonumber(ARGV[1])
        local usedSecret = tonumber(ARGV[10])
        local function decode(value)
          if not value then return nil end
          local ok, decoded = pcall(cjson.decode, value)
          if ok and type(decoded) == 'table' then return decoded end
          return nil
        end
        local current = decode(redis.call('GET', KEYS[1]))
        local currentVersion, currentOK = 0, false
        if current and tonumber(current.version) then
          currentVersion = tonumber(current.version)
          currentOK = current.status == 'ok'
        end
        local secretState = 0
        local storedSecretFence = -1
        if ARGV[3] ~= '' then
          local stored = decode(redis.call('GET', KEYS[2]))
          storedSecretFence = (stored and tonumber(stored.fence)) or 0
          local storedExists = redis.call('EXISTS', KEYS[2]) == 1
          if storedExists and storedSecretFence >= fence and storedSecretFence ~= usedSecret then
            redis.call('XADD', KEYS[3], 'MAXLEN', '~', 1000, '*', 'event', 'stale_write_rejected',
              'service', ARGV[9], 'version', tostring(fence), 'newer_version', tostring(storedSecretFence),
              'replica', ARGV[5], 'reason', 'newer_secret')
            return {0, currentVersion, 0, -1}
          end
          secretState = 1
        end
        local recordRejected = ARGV[2] ~= '' and currentVersion > fence and currentOK
        local version = fence
        if currentVersion >= fence or storedSecretFence >= fence then
          version = redis.call('INCR', KEYS[4])
        end
        if secretState == 1 then
          redis.call('SET', KEYS[2], (string.gsub(ARGV[3], '"@@VERSION@@"', tostring(version))))
        end
        if recordRejected then
          redis.call('XADD', KEYS[3], 'MAXLEN', '~', 1000, '*', 'event', 'stale_write_rejected',
            'service', ARGV[9], 'version', tostring(fence), 'newer_version', tostring(currentVersion), 'replica', ARGV[5])
          return {0, currentVersion, 0, secretState}
        end
        if ARGV[2] ~= '' then
          redis.call('SET', KEYS[1], (string.gsub(ARGV[2], '"@@VERSION@@"', tostring(version))))
        end
        local held = '0'
        if redis.call('GET', KEYS[5]) == ARGV[7] then held = '1' end
        local fields = {'event', ARGV[4], 'service', ARGV[9], 'version', tostring(version), 'replica', ARGV[5], 'lock_held', held}
        if ARGV[8] ~= '' then
          table.insert(fields, 'error')
          table.insert(fields, ARGV[8])
        end
        redis.call('XADD', KEYS[3], 'MAXLEN', '~', 1000, '*', unpack(fields))
        if ARGV[2] ~= '' then redis.call('PUBLISH', ARGV[6], tostring(version)) end
        return {1, version, tonumber(held), secretState}
        """)

    /// Store a refresh token given by an operator (`baton seed`): always wins, with a fresh fence.
    ///
    /// KEYS: secret, fence counter, token, events. ARGV: secret envelope JSON (fence placeholder
    /// `"@@VERSION@@"`), service name, replica, change channel.
    /// A record in `needs_reauth` or `refreshing_failed` goes back to `ok` (its token is kept; the
    /// coordinator refreshes it when due). Returns the new fence.
    static let seed = RedisScript("""
        local fence = redis.call('INCR', KEYS[2])
        redis.call('SET', KEYS[1], (string.gsub(ARGV[1], '"@@VERSION@@"', tostring(fence))))
        local current = redis.call('GET', KEYS[3])
        if current then
          local ok, decoded = pcall(cjson.decode, current)
          if ok and type(decoded) == 'table' and decoded.status ~= 'ok' then
            decoded.status = 'ok'
            decoded.last_error = cjson.null
            decoded.version = fence
            redis.call('SET', KEYS[3], cjson.encode(decoded))
          end
        end
        redis.call('XADD', KEYS[4], 'MAXLEN', '~', 1000, '*', 'event', 'seeded', 'service', ARGV[2],
          'version', tostring(fence), 'replica', ARGV[3])
        redis.call('PUBLISH', ARGV[4], tostring(fence))
        return fence
        """)

    /// Every script, for tests that compare local SHA-1s with `SCRIPT LOAD`.
    static let all = [persist, seed]
}
