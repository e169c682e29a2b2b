-- Take a lock, re-entrant for its owner (a redelivered task, a resumed run), in one step:
-- set with a TTL if free; if the caller already owns it, its TTL is renewed.
-- KEYS[1] lock                  (string: owner token)
-- ARGV[1] owner token
-- ARGV[2] TTL in milliseconds
-- Returns: "" taken (or renewed for its owner), else the token of the other owner.
local lock_key = KEYS[1]
local token, ttl_ms = ARGV[1], ARGV[2]

if redis.call('SET', lock_key, token, 'NX', 'PX', ttl_ms) then
  return ''
end
local owner = redis.call('GET', lock_key)
if owner == token then
  redis.call('PEXPIRE', lock_key, ttl_ms)
  return ''
end
return owner
