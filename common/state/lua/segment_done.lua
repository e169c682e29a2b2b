-- A segment's chord finished: its load task runs (it records what its chunks counted), or,
-- when a chunk of it failed for good, the error callback (it records the failure). Says
-- whether this task is the run's last, the one that ends it (loads it, or fails it with the
-- first recorded failure): when the plan is complete and every segment of the session has
-- finished. As with one chord for the whole run, a failed chunk lets the others finish (and
-- commit) first. Exactly one task (the first to find that, or a redelivery of it: same
-- task id) gets 1.
-- KEYS[1] run meta              (hash)
-- KEYS[2] the session's segments (hash: segment id -> JSON {token, chunks, sent, counts})
-- ARGV[1] segment id
-- ARGV[2] the segment's counts as a JSON object
-- ARGV[3] session
-- ARGV[4] the task's id
-- ARGV[5] the failure ('' for a segment whose chunks all committed)
-- Returns: 1 last (load and end the run); 0 not the last; -1 unknown segment; -2 stale session.
local meta_key, segments_key = KEYS[1], KEYS[2]
local segment, counts, session, task_id = ARGV[1], ARGV[2], ARGV[3], ARGV[4]

if (redis.call('HGET', meta_key, 'session') or '1') ~= session then
  return -2
end
local raw = redis.call('HGET', segments_key, segment)
if not raw then
  return -1
end
local entry = cjson.decode(raw)
entry.counts = cjson.decode(counts)
if ARGV[5] ~= '' then
  entry.failed = ARGV[5]
end
redis.call('HSET', segments_key, segment, cjson.encode(entry))
if redis.call('HGET', meta_key, 'planning') == '1' then
  return 0
end
local all = redis.call('HGETALL', segments_key)
for i = 2, #all, 2 do
  if cjson.decode(all[i]).counts == nil then
    return 0
  end
end
local field = 'finalizer:' .. session
local holder = redis.call('HGET', meta_key, field)
if holder == false then
  redis.call('HSET', meta_key, field, task_id)
  return 1
end
return (holder == task_id) and 1 or 0
