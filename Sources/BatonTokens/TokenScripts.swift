import BatonRedis

/// The token layer's Lua scripts: each write of a record or a refresh token is one atomic,
/// fence-checked script that also appends the audit event and publishes the change.
///
/// Every key a script touches is declared in KEYS, and all of them carry the service's hash tag
/// `{svc}`, so each script runs on one Redis Cluster slot. The service registry
/// (`prefix:services`, another slot) is updated by the caller afterwards (`SADD`, idempotent).
enum TokenScripts {
    /// Lua shared by the scripts that read stored JSON: `decode(value)` is the table, or `nil` for
    /// a missing key or anything that is not a JSON object (a record or envelope edited by hand).
    private static let decodeFunction = """
        local function decode(value)
          if not value then return nil end
          local ok, decoded = pcall(cjson.decode, value)
          if ok and type(decoded) == 'table' then return decoded end
          return nil
        end
        """

    /// Persist the outcome of a refresh (or a status change) under a fence.
    ///
    /// KEYS: token, secret, events, fence counter, lock.
    /// ARGV: 1 fence of the writer's lease; 2 record JSON (its `"version"` field is the placeholder
    /// `"@@VERSION@@"`) or `""` to write the secret alone; 3 the secret's stored envelope (sealed or
    /// plain, its fence ARGV[11]) or `""`; 4 event name; 5 replica; 6 change channel; 7 lock owner;
    /// 8 error code or `""`; 9 service name; 10 the identity (SHA-1 hex of the token) of the
    /// stored secret the provider call used, or `""`; 11 with a secret, the version allocated for
    /// it (the writer's fence, or one from ``allocateVersion``): a sealed envelope binds its fence,
    /// so it is decided before the write. The identity of a stored envelope is its `id` (sealed), or the SHA-1 of its
    /// `refresh_token` (plain).
    ///
    /// Rules, in this order:
    /// - **The secret** (a rotated refresh token) replaces the stored one if the stored one is
    ///   *the one it was rotated from* (its identity is ARGV[10]: the provider has just
    ///   invalidated it, so ours is the only valid token), is older than the writer's fence, is
    ///   ours already (a retried write whose reply was lost), or is missing. Otherwise a newer
    ///   secret exists (an operator's seed, or another holder's rotation) and **the whole write
    ///   is refused**: `{0, recordVersion, 0, -1}`. A failure record never licenses an older secret.
    /// - **A failure record** (status other than `ok`) based on a secret that has been replaced
    ///   since (ARGV[10] given, the stored secret another) is refused the same way: the failure
    ///   says nothing about the new secret.
    /// - **The record** is rejected when a newer *successful* record exists (`{0, thatVersion,
    ///   0, secret}`): a stale holder never overwrites newer state. A newer *failure* record
    ///   (written by a holder that used the token we just rotated) is overwritten.
    /// - **A secret written alone** (a spooled or recovered token) over a `needs_reauth` record
    ///   brings the record back to `ok`, as a seed does: the credential is alive again.
    /// - The version of what is written is, with a secret, the one decided before (ARGV[11]: first
    ///   the writer's fence, then freshly allocated ones); when the stored record or secret has
    ///   already reached it, nothing is written and the script returns `{2, thatVersion, 0, 0, 0}`:
    ///   allocate above it and seal again. Without a secret it is the writer's fence, or a fresh
    ///   `INCR` of the fence counter (raised above the stored version when the counter is behind
    ///   it, as after data loss) when the stored record or secret is already at or above it.
    ///   Either way: the writer's fence when it is newer than everything stored, else a fresh
    ///   number. Versions and secret fences only ever grow.
    /// - **A repeat** (the offered secret is the stored one, and the offered record, if any, is
    ///   the stored one but for its version: a retry whose reply was lost, or one waiting for
    ///   replica acknowledgements) changes nothing and returns the stored version. Its event is
    ///   still appended (with `repeated 1`): that write is what a `WAIT` after it on the same
    ///   connection measures, so the acknowledgement covers the earlier write too.
    /// - Appends `event` to the stream (`MAXLEN ~ 1000`) and publishes the version on the change
    ///   channel when the record changed.
    ///
    /// Returns `{written, version, lockHeld, secret, created}`: `written` 1 when the record (or,
    /// with no record, the secret) was written; `secret` 1 written, 0 none offered, -1 refused;
    /// `created` 1 when the service had no record before (the caller registers it then).
    static let persist = RedisScript(
        """
        local fence = tonumber(ARGV[1])
        local usedSecret = ARGV[10]
        \(decodeFunction)
        local function identity(envelope)
          if type(envelope.id) == 'string' then return envelope.id end
          if type(envelope.refresh_token) == 'string' then return redis.sha1hex(envelope.refresh_token) end
          return nil
        end
        local function refuse(currentVersion, reason)
          redis.call('XADD', KEYS[3], 'MAXLEN', '~', 1000, '*', 'event', 'stale_write_rejected',
            'service', ARGV[9], 'version', tostring(fence), 'replica', ARGV[5], 'reason', reason)
          return {0, currentVersion, 0, -1, 0}
        end
        local currentRaw = redis.call('GET', KEYS[1])
        local current = decode(currentRaw)
        local currentVersion, currentOK = 0, false
        if current and tonumber(current.version) then
          currentVersion = tonumber(current.version)
          currentOK = current.status == 'ok'
        end
        local stored = decode(redis.call('GET', KEYS[2]))
        local storedFence = -1
        local storedIsUsed = false
        if stored then
          storedFence = tonumber(stored.fence) or 0
          storedIsUsed = usedSecret ~= '' and identity(stored) == usedSecret
        end
        local secretState = 0
        local same = false
        if ARGV[3] ~= '' then
          local offered = decode(ARGV[3])
          same = stored and offered and identity(stored) ~= nil and identity(stored) == identity(offered)
          if stored and not same and not storedIsUsed and storedFence >= fence then
            return refuse(currentVersion, 'newer_secret')
          end
          secretState = 1
        elseif ARGV[2] ~= '' and usedSecret ~= '' and stored and not storedIsUsed then
          local offeredRecord = decode(ARGV[2])
          if offeredRecord and offeredRecord.status ~= 'ok' then
            return refuse(currentVersion, 'secret_replaced')
          end
        end
        local function finish(version, recordChanged, extra)
          local held = '0'
          if redis.call('GET', KEYS[5]) == ARGV[7] then held = '1' end
          local fields = {'event', ARGV[4], 'service', ARGV[9], 'version', tostring(version), 'replica', ARGV[5], 'lock_held', held}
          if ARGV[8] ~= '' then
            table.insert(fields, 'error')
            table.insert(fields, ARGV[8])
          end
          for _, field in ipairs(extra) do table.insert(fields, field) end
          redis.call('XADD', KEYS[3], 'MAXLEN', '~', 1000, '*', unpack(fields))
          if recordChanged then redis.call('PUBLISH', ARGV[6], tostring(version)) end
          local created = 0
          if not current then created = 1 end
          return {1, version, tonumber(held), secretState, created}
        end
        if same and (ARGV[2] == '' or (currentRaw and
            currentRaw == (string.gsub(ARGV[2], '"@@VERSION@@"', tostring(currentVersion))))) then
          if ARGV[2] == '' then return finish(storedFence, false, {'repeated', '1'}) end
          return finish(currentVersion, false, {'repeated', '1'})
        end
        local recordRejected = ARGV[2] ~= '' and currentVersion > fence and currentOK
        local version = fence
        if secretState == 1 then
          version = tonumber(ARGV[11])
          if currentVersion >= version or storedFence >= version then
            return {2, math.max(currentVersion, storedFence), 0, 0, 0}
          end
          redis.call('SET', KEYS[2], ARGV[3])
        elseif currentVersion >= fence or storedFence >= fence then
          -- A fresh number, above what is stored even when the counter is behind it (lost with
          -- Redis data while a record survived on another node): versions never go back.
          version = redis.call('INCR', KEYS[4])
          local newest = math.max(currentVersion, storedFence)
          if version <= newest then
            version = newest + 1
            redis.call('SET', KEYS[4], tostring(version))
          end
        end
        if recordRejected then
          redis.call('XADD', KEYS[3], 'MAXLEN', '~', 1000, '*', 'event', 'stale_write_rejected',
            'service', ARGV[9], 'version', tostring(fence), 'newer_version', tostring(currentVersion), 'replica', ARGV[5])
          return {0, currentVersion, 0, secretState, 0}
        end
        local recordChanged = false
        if ARGV[2] ~= '' then
          redis.call('SET', KEYS[1], (string.gsub(ARGV[2], '"@@VERSION@@"', tostring(version))))
          recordChanged = true
        elseif secretState == 1 and current and current.status == 'needs_reauth' then
          current.status = 'ok'
          current.last_error = cjson.null
          current.version = version
          redis.call('SET', KEYS[1], cjson.encode(current))
          recordChanged = true
        end
        return finish(version, recordChanged, {})
        """)

    /// Store a refresh token given by an operator (`baton seed`): always wins, with a fresh fence.
    ///
    /// KEYS: secret, fence counter, token, events. ARGV: 1 the sealed (or plain) envelope, whose
    /// fence is 5; 2 service name; 3 replica; 4 change channel; 5 the version allocated for it
    /// (``allocateVersion``).
    /// When the stored record or secret has reached that version meanwhile (a rotation between
    /// the allocation and this script), nothing is written and the script returns `-thatVersion`:
    /// allocate above it and seal again.
    /// A record in `needs_reauth` or `refreshing_failed` goes back to `ok` (its token is kept; the
    /// coordinator refreshes it when due). Returns the new fence.
    static let seed = RedisScript(
        """
        local fence = tonumber(ARGV[5])
        \(decodeFunction)
        local stored = decode(redis.call('GET', KEYS[1]))
        local current = decode(redis.call('GET', KEYS[3]))
        local newest = 0
        if stored then newest = tonumber(stored.fence) or 0 end
        if current and tonumber(current.version) then newest = math.max(newest, tonumber(current.version)) end
        if newest >= fence then return -newest end
        redis.call('SET', KEYS[1], ARGV[1])
        if current and current.status ~= 'ok' then
          current.status = 'ok'
          current.last_error = cjson.null
          current.version = fence
          redis.call('SET', KEYS[3], cjson.encode(current))
        end
        redis.call('XADD', KEYS[4], 'MAXLEN', '~', 1000, '*', 'event', 'seeded', 'service', ARGV[2],
          'version', tostring(fence), 'replica', ARGV[3])
        redis.call('PUBLISH', ARGV[4], tostring(fence))
        return fence
        """)

    /// The version for a write that carries a secret, decided before the write because a sealed
    /// envelope binds its fence: a fresh `INCR` of the service's fence counter (which lock fences
    /// come from too), raised above `floor` when the counter is behind it (a counter lost with
    /// Redis data, while a record or lease kept a higher number).
    ///
    /// KEYS: fence counter. ARGV: 1 floor. Returns the version.
    static let allocateVersion = RedisScript(
        """
        local version = redis.call('INCR', KEYS[1])
        local floor = tonumber(ARGV[1]) or 0
        if version <= floor then
          version = floor + 1
          redis.call('SET', KEYS[1], tostring(version))
        end
        return version
        """)

    /// Re-seal a stored secret (`baton rekey`): replaces the envelope only if it is still exactly
    /// the one that was read (compare-and-set), so a rotation or a seed in between always wins;
    /// the new envelope holds the same token, fence and identity, sealed under another key.
    ///
    /// KEYS: secret, events. ARGV: 1 the envelope as read; 2 the new one; 3 service; 4 replica;
    /// 5 the new kid; 6 the old kid or `none`; 7 the fence.
    /// Returns 1 when replaced, 0 when the stored envelope changed meanwhile.
    static let reseal = RedisScript(
        """
        if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
        redis.call('SET', KEYS[1], ARGV[2])
        redis.call('XADD', KEYS[2], 'MAXLEN', '~', 1000, '*', 'event', 'rekeyed', 'service', ARGV[3],
          'version', ARGV[7], 'replica', ARGV[4], 'kid', ARGV[5], 'previous_kid', ARGV[6])
        return 1
        """)

    /// Mark a rotated refresh token as waiting for replica acknowledgements (``AwaitingReplicas``).
    ///
    /// KEYS: the service's `awaiting-replicas` hash. ARGV: 1 replica, 2 fence, 3 required,
    /// 4 acknowledged, 5 TTL in ms.
    /// When the hash already describes this replica's token of this fence (a later attempt, or a
    /// later spool replay) it keeps `since` and counts the attempt; otherwise it starts over at
    /// the server's clock. Returns `{since, attempts, now}` (ms since the epoch, server clock).
    static let markAwaitingReplicas = RedisScript(
        """
        local time = redis.call('TIME')
        local now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
        local since, attempts = now, 1
        local marked = redis.call('HMGET', KEYS[1], 'replica', 'fence', 'since', 'attempts')
        if marked[1] == ARGV[1] and marked[2] == ARGV[2] and tonumber(marked[3]) then
          since = tonumber(marked[3])
          attempts = (tonumber(marked[4]) or 0) + 1
        end
        redis.call('HSET', KEYS[1], 'replica', ARGV[1], 'fence', ARGV[2], 'required', ARGV[3],
          'acknowledged', ARGV[4], 'since', tostring(since), 'attempts', tostring(attempts))
        redis.call('PEXPIRE', KEYS[1], ARGV[5])
        return {since, attempts, now}
        """)

    /// Clear the mark of ``markAwaitingReplicas`` once the token is acknowledged (or superseded),
    /// only if it is still the mark of this fence: a newer writer's wait is its own to end. The
    /// fence alone decides (fences are unique per service): a token is often acknowledged by
    /// another process than the one that marked it (the host's `baton serve` replaying what a
    /// `baton refresh` spooled).
    ///
    /// KEYS: the service's `awaiting-replicas` hash. ARGV: 1 fence.
    /// Returns `{attempts, since, now}` of the cleared mark (ms, server clock), or `{}` when
    /// there was none of this fence.
    static let clearAwaitingReplicas = RedisScript(
        """
        local marked = redis.call('HMGET', KEYS[1], 'replica', 'fence', 'attempts', 'since')
        if marked[2] ~= ARGV[1] then return {} end
        redis.call('DEL', KEYS[1])
        local time = redis.call('TIME')
        local now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
        return {tonumber(marked[3]) or 0, tonumber(marked[4]) or now, now}
        """)

    /// Every script, for tests that compare local SHA-1s with `SCRIPT LOAD`.
    static let all = [persist, seed, allocateVersion, reseal, markAwaitingReplicas, clearAwaitingReplicas]
}
