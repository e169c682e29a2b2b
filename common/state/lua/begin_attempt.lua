-- Start one attempt of a chunk: take the chunk's fence before anything is uploaded.
-- Only a message of the run's current session, for a run still active and a chunk still
-- pending, gets the fence; the commit is accepted only from the attempt holding it, so two
-- attempts of one chunk (two sessions, or a redelivered message) can never both commit.
-- KEYS[1] run meta              (hash)
-- KEYS[2] run chunks            (hash: chunk number -> JSON)
-- KEYS[3] run attempts          (hash: chunk number -> attempts started this session)
-- KEYS[4] table lock            (string: owner token)
-- KEYS[5] table state           (hash: counts the attempt in chunk_attempts)
-- ARGV[1] chunk number
-- ARGV[2] session the message belongs to
-- ARGV[3] attempt id (the fence token; also names the attempt's S3 prefix)
-- ARGV[4] worker name
-- ARGV[5] now (unix seconds)
-- ARGV[6] run id
-- ARGV[7] lock TTL in milliseconds (renewed if the run owns the lock)
-- ARGV[8] final run statuses as a JSON array
-- Returns: {code, attempts}: 1 fenced; 0 chunk already committed; -1 no such chunk;
--          -2 the message's session is not the run's current one; -3 the run is over.
--#include finals.lua
local meta_key, chunks_key, attempts_key, lock_key, state_key = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5]
local chunk_no, session, attempt_id, worker = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
local now, run_id, lock_ttl, finals_json = ARGV[5], ARGV[6], ARGV[7], ARGV[8]

local raw = redis.call('HGET', chunks_key, chunk_no)
if not raw then
  return {-1, 0}
end
if (redis.call('HGET', meta_key, 'session') or '1') ~= session then
  return {-2, 0}
end
local status = redis.call('HGET', meta_key, 'status') or ''
if is_final(status, finals_json) then
  return {-3, 0}
end
local chunk = cjson.decode(raw)
if chunk.state ~= 'pending' then
  return {0, 0}
end
local attempts = redis.call('HINCRBY', attempts_key, chunk_no, 1)
redis.call('HINCRBY', state_key, 'chunk_attempts', 1)
chunk.fence = attempt_id
chunk.attempt_worker = worker
chunk.attempt_started_at = now
chunk.attempts = (chunk.attempts or 0) + 1
redis.call('HSET', chunks_key, chunk_no, cjson.encode(chunk))
if redis.call('GET', lock_key) == run_id then
  redis.call('PEXPIRE', lock_key, lock_ttl)
end
return {1, attempts}
