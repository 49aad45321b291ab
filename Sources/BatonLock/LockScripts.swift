import BatonRedis

/// The lock's Lua scripts. Each runs atomically on the server; all read the clock with `TIME`
/// (allowed since Redis 5 replicates script effects, not scripts), so hosts' clocks never matter.
enum LockScripts {
    /// Shared Lua: sets `now` (declared by the caller) to the server clock in milliseconds.
    /// Only read when a decision needs it: the uncontended path never calls `TIME`.
    private static let now = """
        local clock = redis.call('TIME')
        now = tonumber(clock[1]) * 1000 + math.floor(tonumber(clock[2]) / 1000)
        """

    /// Try to take the lock, or join the queue of waiters.
    ///
    /// KEYS: lock, fence, queue, waiters. ARGV: owner, ttl (ms), registration lease (ms; 0 = do
    /// not queue).
    /// Returns `{1, fence}` when the caller holds the lock (newly, or through a grant it has not
    /// heard of yet), else `{0, pttl}` with the lock's remaining TTL (-2: free, but waiters are
    /// ahead of the caller; -1: held without a TTL).
    ///
    /// The lock is free for the caller only when nobody live is queued ahead of it: newcomers do
    /// not barge past waiters, which is what keeps waiters from starving. Waiters whose
    /// registration lapsed (they died or gave up) are dropped from the head of the queue.
    static let acquire = RedisScript(
        """
        local holder = redis.call('GET', KEYS[1])
        if holder == ARGV[1] then
          return {1, tonumber(redis.call('GET', KEYS[2]) or '0')}
        end
        local now = 0
        if not holder then
          local head = redis.call('LINDEX', KEYS[3], 0)
          if head then
            \(now)
          end
          while head do
            local entry = redis.call('HGET', KEYS[4], head)
            if entry and tonumber(string.match(entry, '^(%d+)')) > now then break end
            redis.call('LPOP', KEYS[3])
            redis.call('HDEL', KEYS[4], head)
            head = redis.call('LINDEX', KEYS[3], 0)
          end
          if (not head) or head == ARGV[1] then
            if head then
              redis.call('LPOP', KEYS[3])
              redis.call('HDEL', KEYS[4], head)
            end
            redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
            return {1, redis.call('INCR', KEYS[2])}
          end
        end
        local lease = tonumber(ARGV[3])
        if lease > 0 then
          if now == 0 then
            \(now)
          end
          if redis.call('HSET', KEYS[4], ARGV[1], (now + lease) .. ':' .. ARGV[2]) == 1 then
            redis.call('RPUSH', KEYS[3], ARGV[1])
          end
          redis.call('PEXPIRE', KEYS[3], lease * 2)
          redis.call('PEXPIRE', KEYS[4], lease * 2)
        end
        return {0, redis.call('PTTL', KEYS[1])}
        """)

    /// Release the lock if the caller holds it, and hand it straight to the first live waiter.
    ///
    /// KEYS: lock, fence, queue, waiters. ARGV: owner, wake channel.
    /// Returns 0 when the caller does not hold the lock (nothing changes), 1 when released with
    /// nobody waiting, 2 when handed over: the lock then already belongs to the next waiter, with
    /// a new fence and that waiter's TTL, and `grant <fence> <owner>` is published on the wake
    /// channel. Handing over in the same script means no newcomer can barge in between, and the
    /// waiter holds the lock without another round trip.
    static let release = RedisScript(
        """
        if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
        redis.call('DEL', KEYS[1])
        local head = redis.call('LPOP', KEYS[3])
        if not head then return 1 end
        local now = 0
        \(now)
        while head do
          local entry = redis.call('HGET', KEYS[4], head)
          redis.call('HDEL', KEYS[4], head)
          if entry then
            local expires, ttl = string.match(entry, '^(%d+):(%d+)$')
            if tonumber(expires) > now then
              redis.call('SET', KEYS[1], head, 'PX', ttl)
              local fence = redis.call('INCR', KEYS[2])
              redis.call('PUBLISH', ARGV[2], 'grant ' .. fence .. ' ' .. head)
              return 2
            end
          end
          head = redis.call('LPOP', KEYS[3])
        end
        return 1
        """)

    /// Extend the lock's TTL if the caller holds it.
    ///
    /// KEYS: lock. ARGV: owner, ttl (ms). Returns 1 when extended, 0 when not held.
    static let extend = RedisScript(
        """
        if redis.call('GET', KEYS[1]) == ARGV[1] then
          return redis.call('PEXPIRE', KEYS[1], ARGV[2])
        end
        return 0
        """)

    /// A waiter gives up: leave the queue, unless a grant already made it the holder.
    ///
    /// KEYS: lock, fence, queue, waiters. ARGV: owner.
    /// Returns `{1, fence}` when the caller holds the lock after all, else `{0, 0}`.
    static let withdraw = RedisScript(
        """
        if redis.call('GET', KEYS[1]) == ARGV[1] then
          return {1, tonumber(redis.call('GET', KEYS[2]) or '0')}
        end
        redis.call('LREM', KEYS[3], 0, ARGV[1])
        redis.call('HDEL', KEYS[4], ARGV[1])
        return {0, 0}
        """)

    /// Write a value only if the writer's fencing token is not older than the newest one seen.
    ///
    /// KEYS: the target hash (fields `fence` and `value`). ARGV: fence, value.
    /// Returns `{1, fence}` when written, `{0, newestFence}` when rejected as stale. Equal fences
    /// are accepted: one holder may write more than once.
    static let fencedSet = RedisScript(
        """
        local newest = tonumber(redis.call('HGET', KEYS[1], 'fence') or '0')
        local fence = tonumber(ARGV[1])
        if fence < newest then return {0, newest} end
        redis.call('HSET', KEYS[1], 'fence', ARGV[1], 'value', ARGV[2])
        return {1, fence}
        """)

    /// Every script, for tests that compare local SHA-1s with `SCRIPT LOAD`.
    static let all = [acquire, release, extend, withdraw, fencedSet]
}
