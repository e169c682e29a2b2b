-- Commit one extracted chunk: its record, the session and cumulative totals, the
-- parts awaiting load, and the cursor over the longest run of committed chunks.
-- Accepted only from the attempt holding the chunk's fence (begin_attempt.lua), in the
-- run's current session, while the run is active; anything else changes nothing.
-- KEYS[1] run meta              (hash)
-- KEYS[2] run chunks            (hash: chunk number -> JSON)
-- KEYS[3] table state           (hash)
-- KEYS[4] parts awaiting load   (hash: part key -> JSON)
-- KEYS[5] table lock            (string: owner token)
-- KEYS[6] the run's current session (hash: this session's totals)
-- ARGV[1] chunk number
-- ARGV[2] rows
-- ARGV[3] bytes
-- ARGV[4] parts as JSON array of {key, rows, bytes}
-- ARGV[5] worker name
-- ARGV[6] now (unix seconds)
-- ARGV[7] run id
-- ARGV[8] lock TTL in milliseconds (renewed if the run still owns the lock)
-- ARGV[9] session the committing message belongs to
-- ARGV[10] attempt id (must be the chunk's fence)
-- ARGV[11] final run statuses as a JSON array
-- ARGV[12] a reconcile range's findings, JSON {counts = {field = n}, ...} ('' for none):
--          kept on the chunk, its counts added to the run's fields of the same names
-- Returns: 1 committed; 0 already committed; -1 no such chunk; -2 stale session;
--          -3 the run is over; -4 another attempt holds the fence.
--#include cursor.lua
--#include finals.lua
local meta_key, chunks_key, state_key, pending_key, lock_key = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5]
local session_key = KEYS[6]
local chunk_no, rows, nbytes = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3])
local parts_json, worker, now, run_id, lock_ttl = ARGV[4], ARGV[5], ARGV[6], ARGV[7], ARGV[8]
local session, attempt_id, finals_json = ARGV[9], ARGV[10], ARGV[11]
local findings = (ARGV[12] and ARGV[12] ~= '') and cjson.decode(ARGV[12]) or nil

local raw = redis.call('HGET', chunks_key, chunk_no)
if not raw then
  return -1
end
if (redis.call('HGET', meta_key, 'session') or '1') ~= session then
  return -2
end
local chunk = cjson.decode(raw)
if chunk.state ~= 'pending' then
  return 0
end
local status = redis.call('HGET', meta_key, 'status') or ''
if is_final(status, finals_json) then
  return -3
end
if chunk.fence ~= attempt_id then
  return -4
end
local parts = cjson.decode(parts_json)
local keys = {}
for _, part in ipairs(parts) do
  table.insert(keys, part.key)
  redis.call('HSET', pending_key, part.key, cjson.encode({
    run = run_id, chunk = tonumber(chunk_no), rows = part.rows, bytes = part.bytes}))
end
-- A chunk without rows has nothing to load.
chunk.state = (#parts > 0) and 'done' or 'loaded'
chunk.rows = rows
chunk.bytes = nbytes
chunk.parts = keys
chunk.loaded_parts = 0
chunk.worker = worker
chunk.committed_at = now
chunk.attempt = attempt_id
if findings then
  chunk.reconcile = findings
  for field, n in pairs(findings.counts or {}) do
    redis.call('HINCRBY', meta_key, field, n)
  end
end
redis.call('HSET', chunks_key, chunk_no, cjson.encode(chunk))

local nparts = #parts
redis.call('HINCRBY', meta_key, 'rows_extracted', rows)
redis.call('HINCRBY', meta_key, 'files_extracted', nparts)
redis.call('HINCRBY', meta_key, 'bytes_extracted', nbytes)
redis.call('HINCRBY', meta_key, 'chunks_done', 1)
redis.call('HINCRBY', session_key, 'rows_extracted', rows)
redis.call('HINCRBY', session_key, 'files_extracted', nparts)
redis.call('HINCRBY', session_key, 'bytes_extracted', nbytes)
redis.call('HINCRBY', session_key, 'chunks_done', 1)
redis.call('HINCRBY', state_key, 'rows_extracted', rows)
redis.call('HINCRBY', state_key, 'files_extracted', nparts)
redis.call('HINCRBY', state_key, 'bytes_extracted', nbytes)
redis.call('HSET', state_key, 'last_commit_at', now)

-- Only a run that owns the table lock moves the cursor: a late commit of a run whose
-- lock expired must not.
local contiguous = contiguous_chunks(meta_key, chunks_key)
if redis.call('GET', lock_key) == run_id then
  redis.call('PEXPIRE', lock_key, lock_ttl)
  advance_cursor(meta_key, chunks_key, state_key, run_id, contiguous, now)
end
return 1
