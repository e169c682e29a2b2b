-- Record why a chunk attempt failed, on the chunk and as the run's last chunk error, but
-- only for the run's current session: a stale session's failure must not be reported as
-- the cause of the session that is running now.
-- KEYS[1] run meta              (hash)
-- KEYS[2] run chunks            (hash: chunk number -> JSON)
-- ARGV[1] chunk number
-- ARGV[2] session the failing message belongs to
-- ARGV[3] error text
-- ARGV[4] now (unix seconds)
-- Returns: 1 recorded, 0 stale session (nothing written).
local meta_key, chunks_key = KEYS[1], KEYS[2]
local chunk_no, session, err, now = ARGV[1], ARGV[2], ARGV[3], ARGV[4]

if (redis.call('HGET', meta_key, 'session') or '1') ~= session then
  return 0
end
redis.call('HSET', meta_key, 'last_chunk_error', 'chunk ' .. chunk_no .. ': ' .. err)
local raw = redis.call('HGET', chunks_key, chunk_no)
if raw then
  local chunk = cjson.decode(raw)
  chunk.error = err
  chunk.error_at = now
  chunk.error_session = tonumber(session)
  redis.call('HSET', chunks_key, chunk_no, cjson.encode(chunk))
end
return 1
