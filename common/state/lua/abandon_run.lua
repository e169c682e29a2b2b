-- Abandon an unfinished run (after `watermark set` skipped rows): it is never resumed, its
-- stragglers cannot commit (begin_attempt and commit_chunk refuse a final status), and its
-- committed parts leave "awaiting load" for the orphan list, so none of them is ever loaded.
-- KEYS[1] run meta              (hash)
-- KEYS[2] parts awaiting load   (hash: part key -> JSON {run, chunk, rows, bytes})
-- KEYS[3] orphaned objects      (hash: S3 key -> JSON {run, chunk, reason, at})
-- ARGV[1] run id
-- ARGV[2] now (unix seconds)
-- Returns: the number of parts taken out of "awaiting load".
local meta_key, pending_key, orphans_key = KEYS[1], KEYS[2], KEYS[3]
local run_id, now = ARGV[1], ARGV[2]

redis.call('HSET', meta_key, 'status', 'abandoned', 'finished_at', now)
local entries = redis.call('HGETALL', pending_key)
local dropped = 0
for i = 1, #entries, 2 do
  local info = cjson.decode(entries[i + 1])
  if info.run == run_id then
    redis.call('HDEL', pending_key, entries[i])
    redis.call('HSET', orphans_key, entries[i], cjson.encode({
      run = run_id, chunk = info.chunk, reason = 'abandoned run', at = now}))
    dropped = dropped + 1
  end
end
return dropped
