-- Mark a claimed segment as sent (its chord is on the broker), keeping anything its load
-- already recorded. Only the claim's own token marks it.
-- KEYS[1] the session's segments (hash: segment id -> JSON {token, chunks, sent, counts})
-- ARGV[1] segment id
-- ARGV[2] claim token
-- Returns: 1 marked; 0 not this token's claim.
local raw = redis.call('HGET', KEYS[1], ARGV[1])
if not raw then
  return 0
end
local entry = cjson.decode(raw)
if entry.token ~= ARGV[2] then
  return 0
end
entry.sent = true
redis.call('HSET', KEYS[1], ARGV[1], cjson.encode(entry))
return 1
