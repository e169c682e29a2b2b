-- End a run: its final status, and the table lock released if the run owns it.
-- KEYS[1] table lock            (string: owner token)
-- KEYS[2] table state           (hash)
-- KEYS[3] run meta              (hash)
-- ARGV[1] run id
-- ARGV[2] status: succeeded, extracted (--extract-only), failed or cancelled (ferry cancel)
-- ARGV[3] error text ('' if none)
-- ARGV[4] now (unix seconds)
-- ARGV[5] session of the caller ('' for a caller outside any session)
-- Counts the run in the table's `runs_<status>` counter (once per status it reaches).
-- Returns: 1 if the lock was released, 0 if the run did not own it, -1 if the caller's
--          session is not the run's current one (nothing changed).
local lock_key, state_key, meta_key = KEYS[1], KEYS[2], KEYS[3]
local run_id, status, err, now, session = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5]

-- A stale session's chord body or error callback must not end the session running now.
if session ~= '' and (redis.call('HGET', meta_key, 'session') or '1') ~= session then
  return -1
end
if redis.call('HGET', meta_key, 'status') ~= status then
  redis.call('HINCRBY', state_key, 'runs_' .. status, 1)
end
redis.call('HSET', meta_key, 'status', status, 'error', err, 'finished_at', now)
-- The table-level status belongs to the run that holds the lock: a late or losing run
-- (a redelivered chord body, a --load-only that lost the race) changes only its own.
local owner = redis.call('GET', lock_key) == run_id
if not owner and redis.call('HGET', state_key, 'active_run') ~= run_id then
  return 0
end
redis.call('HSET', state_key, 'last_run', run_id, 'last_status', status, 'last_error', err)
if status == 'succeeded' then
  redis.call('HSET', state_key, 'status_extract', 'idle', 'status_load', 'idle', 'last_success_at', now)
elseif status == 'extracted' then
  redis.call('HSET', state_key, 'status_extract', 'idle')
else
  redis.call('HSET', state_key, 'status_extract', 'failed')
end
if owner then
  redis.call('DEL', lock_key)
end
if redis.call('HGET', state_key, 'active_run') == run_id then
  redis.call('HDEL', state_key, 'active_run')
end
return owner and 1 or 0
