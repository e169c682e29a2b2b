-- Release a lock only if the caller owns it.
-- KEYS[1] lock                  (string: owner token)
-- ARGV[1] owner token
-- Returns: 1 released, 0 not the owner (or already gone).
local lock_key, token = KEYS[1], ARGV[1]
if redis.call('GET', lock_key) == token then
  return redis.call('DEL', lock_key)
end
return 0
