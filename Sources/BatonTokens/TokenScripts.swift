import BatonRedis

/// The token layer's Lua scripts: each write of a record or a refresh token is one atomic,
/// fence-checked script that also appends the audit event and publishes the change.
enum TokenScripts {
    /// Persist the outcome of a refresh (or a status change) under a fence.
    ///
    /// KEYS: token, secret, events, fence counter, lock.
    /// ARGV: fence, record JSON (its `"version"` field is the placeholder `"@@VERSION@@"`),
    /// secret envelope JSON (its `"fence"` also the placeholder) or `""`, event name, replica,
    /// change channel, lock owner, error code (or `""`), services set key, service name.
    ///
    /// Rules, in this order:
    /// - **The secret** (a rotated refresh token) is written unless a secret with a *newer* fence
    ///   is already stored. It is never dropped for any other reason (not even a lost lock): the
    ///   provider has already invalidated the old one, so this is the only valid token.
    /// - **The record** is rejected when a newer *successful* record exists (returns
    ///   `{0, thatVersion}`): a stale holder never overwrites newer state. A newer *failure*
    ///   record (written by a holder that used the token we just rotated) is overwritten.
    /// - The record's version is the fence, or a fresh `INCR` of the counter when the stored
    ///   record is already newer (so versions only ever grow).
    /// - Appends `event` to the stream (`MAXLEN ~ 1000`), adds the service to the set, publishes
    ///   the version on the change channel.
    ///
    /// Returns `{1, version, lockHeld}` when written, `{0, newerVersion, secretWritten}` when the
    /// record was rejected.
    static let persist = RedisScript("""
        local fence = tonumber(ARGV[1])
        local newer, newerOK = 0, false
        local current = redis.call('GET', KEYS[1])
        if current then
          local ok, decoded = pcall(cjson.decode, current)
          if ok and type(decoded) == 'table' and tonumber(decoded.version) then
            if tonumber(decoded.version) > fence then
              newer = tonumber(decoded.version)
              newerOK = decoded.status == 'ok'
            end
          end
        end
        local version = fence
        if newer > 0 and not newerOK then version = redis.call('INCR', KEYS[4]) end
        local secretWritten = 0
        if ARGV[3] ~= '' then
          local storedFence = 0
          local stored = redis.call('GET', KEYS[2])
          if stored then
            local ok, decoded = pcall(cjson.decode, stored)
            if ok and type(decoded) == 'table' then storedFence = tonumber(decoded.fence) or 0 end
          end
          if storedFence <= version then
            redis.call('SET', KEYS[2], (string.gsub(ARGV[3], '"@@VERSION@@"', tostring(version))))
            secretWritten = 1
          end
        end
        if newerOK then
          redis.call('XADD', KEYS[3], 'MAXLEN', '~', 1000, '*', 'event', 'stale_write_rejected',
            'service', ARGV[10], 'version', tostring(fence), 'newer_version', tostring(newer), 'replica', ARGV[5])
          return {0, newer, secretWritten}
        end
        redis.call('SET', KEYS[1], (string.gsub(ARGV[2], '"@@VERSION@@"', tostring(version))))
        redis.call('SADD', ARGV[9], ARGV[10])
        local held = '0'
        if redis.call('GET', KEYS[5]) == ARGV[7] then held = '1' end
        local fields = {'event', ARGV[4], 'service', ARGV[10], 'version', tostring(version), 'replica', ARGV[5], 'lock_held', held}
        if ARGV[8] ~= '' then
          table.insert(fields, 'error')
          table.insert(fields, ARGV[8])
        end
        redis.call('XADD', KEYS[3], 'MAXLEN', '~', 1000, '*', unpack(fields))
        redis.call('PUBLISH', ARGV[6], tostring(version))
        return {1, version, tonumber(held)}
        """)

    /// Store a refresh token given by an operator (`baton seed`): always wins, with a fresh fence.
    ///
    /// KEYS: secret, fence counter, token, events. ARGV: secret envelope JSON (fence placeholder
    /// `"@@VERSION@@"`), services set key, service name, replica, change channel.
    /// A record in `needs_reauth` or `refreshing_failed` goes back to `ok` (its token is kept; the
    /// coordinator refreshes it when due). Returns the new fence.
    static let seed = RedisScript("""
        local fence = redis.call('INCR', KEYS[2])
        redis.call('SET', KEYS[1], (string.gsub(ARGV[1], '"@@VERSION@@"', tostring(fence))))
        redis.call('SADD', ARGV[2], ARGV[3])
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
        redis.call('XADD', KEYS[4], 'MAXLEN', '~', 1000, '*', 'event', 'seeded', 'service', ARGV[3],
          'version', tostring(fence), 'replica', ARGV[4])
        redis.call('PUBLISH', ARGV[5], tostring(fence))
        return fence
        """)
}
