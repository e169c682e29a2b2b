-- Take (or renew) one of a source's read slots: at most `limit` holders at once across
-- all workers. A slot is a lease: a holder that stops renewing (a dead worker) loses it
-- when its expiry passes, so no crash holds a slot for good.
-- KEYS[1] the source's slots   (sorted set: holder -> lease expiry in ms)
-- ARGV[1] holder token
-- ARGV[2] now in milliseconds
-- ARGV[3] lease in milliseconds
-- ARGV[4] limit (slots)
-- Returns: 1 taken or renewed, 0 every slot is held.
local slots_key = KEYS[1]
local holder, now, lease, limit = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])

redis.call('ZREMRANGEBYSCORE', slots_key, '-inf', now)
if redis.call('ZSCORE', slots_key, holder) or redis.call('ZCARD', slots_key) < limit then
  redis.call('ZADD', slots_key, now + lease, holder)
  redis.call('PEXPIRE', slots_key, lease * 2)
  return 1
end
return 0
