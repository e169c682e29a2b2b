-- Append the next chunks of a run planned in segments, and claim their dispatch, if the
-- caller's session still owns the run and no one appended them first.
-- KEYS[1] table lock            (string: owner token)
-- KEYS[2] run meta              (hash)
-- KEYS[3] run chunks            (hash: chunk number -> JSON)
-- KEYS[4] the session's segments (hash: segment id -> JSON {token, chunks, sent, counts})
-- ARGV[1] run id
-- ARGV[2] session
-- ARGV[3] plan_from expected (the encoded bound the plan stopped at)
-- ARGV[4] chunks as JSON array of {lo, hi, state}
-- ARGV[5] '1' when these chunks end the plan, else ''
-- ARGV[6] the new plan_from (ignored when done)
-- ARGV[7] claim token (the plan task's id)
-- ARGV[8] final run statuses as a JSON array
-- ARGV[9] now (unix seconds): planned_all_at, when these chunks end the plan
-- ARGV[10] rows a --limit still allows after these chunks ('' without a limit)
-- Returns: the first new chunk's number (the segment's id); -1 lock not owned; -2 stale
--          session; -3 the run is over; -4 planning already moved past plan_from.
-- Registering the segment in the same step as clearing `planning` means a segment's load
-- (segment_done.lua) never sees a finished plan with chunks no segment covers.
--#include finals.lua
local lock_key, meta_key, chunks_key, segments_key = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local run_id, session, expected, chunks_json = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
local done, next_from, token, finals_json = ARGV[5], ARGV[6], ARGV[7], ARGV[8]

if redis.call('GET', lock_key) ~= run_id then
  return -1
end
if (redis.call('HGET', meta_key, 'session') or '1') ~= session then
  return -2
end
local status = redis.call('HGET', meta_key, 'status') or ''
if is_final(status, finals_json) then
  return -3
end
if redis.call('HGET', meta_key, 'planning') ~= '1' or redis.call('HGET', meta_key, 'plan_from') ~= expected then
  return -4
end
local first = tonumber(redis.call('HGET', meta_key, 'chunks') or '0')
local chunks = cjson.decode(chunks_json)
local numbers = {}
for i, chunk in ipairs(chunks) do
  redis.call('HSET', chunks_key, tostring(first + i - 1), cjson.encode(chunk))
  table.insert(numbers, first + i - 1)
end
local total = first + #chunks
redis.call('HSET', meta_key, 'chunks', total)
if done == '1' then
  -- The run ends where its last chunk does (before the table's last key, with a --limit).
  redis.call('HDEL', meta_key, 'planning', 'plan_from', 'limit_left')
  redis.call('HSET', meta_key, 'planned_all_at', ARGV[9], 'hi', chunks[#chunks].hi)
else
  redis.call('HSET', meta_key, 'plan_from', next_from)
  if ARGV[10] ~= '' then
    redis.call('HSET', meta_key, 'limit_left', ARGV[10])
  end
end
-- A full reload keeps no cursor: no chunk of it may move one.
if redis.call('HGET', meta_key, 'strategy') == 'full' then
  redis.call('HSET', meta_key, 'advance_from', total)
end
redis.call('HSET', segments_key, tostring(first),
           cjson.encode({token = token, chunks = numbers, sent = false}))
return first
