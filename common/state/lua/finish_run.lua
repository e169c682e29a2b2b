-- End a run: its final status, and the table lock released if the run owns it.
-- KEYS[1] table lock            (string: owner token)
-- KEYS[2] table state           (hash)
-- KEYS[3] run meta              (hash)
-- KEYS[4] the table's reconcile passes (hash; written only for a run of kind reconcile)
-- ARGV[1] run id
-- ARGV[2] status: succeeded, extracted (--extract-only), failed or cancelled (ferry cancel)
-- ARGV[3] error text ('' if none)
-- ARGV[4] now (unix seconds)
-- ARGV[5] session of the caller ('' for a caller outside any session)
-- Counts the run in the table's `runs_<status>` counter (once per status it reaches).
-- A reconcile run (kind=reconcile) records its outcome in KEYS[4] instead of moving
-- last_success_at (it copies no new rows): once ended whole and not a dry run, its rows
-- deleted and repaired are added to the totals and its pass goes on from where it stopped,
-- or, if it reached the end of the key range, the pass is complete.
-- Returns: 1 if the lock was released, 0 if the run did not own it, -1 if the caller's
--          session is not the run's current one (nothing changed).
local lock_key, state_key, meta_key, reconcile_key = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local run_id, status, err, now, session = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5]

-- A stale session's chord body or error callback must not end the session running now.
if session ~= '' and (redis.call('HGET', meta_key, 'session') or '1') ~= session then
  return -1
end
local changed = redis.call('HGET', meta_key, 'status') ~= status
if changed then
  redis.call('HINCRBY', state_key, 'runs_' .. status, 1)
end
local reconcile = redis.call('HGET', meta_key, 'kind') == 'reconcile'
if reconcile and changed then
  local m = redis.call('HMGET', meta_key, 'rec_mode', 'rec_dry_run', 'rows_extracted', 'rows_deleted',
                       'rec_pass_to', 'rec_pass_end', 'rec_pass_started_at')
  redis.call('HSET', reconcile_key, 'last_at', now, 'last_run', run_id, 'last_mode', m[1] or '',
             'last_status', status, 'last_error', err, 'last_dry_run', m[2] or '')
  if (status == 'succeeded' or status == 'extracted') and m[2] ~= '1' then
    local repaired, deleted = tonumber(m[3] or '0'), tonumber(m[4] or '0')
    redis.call('HSET', reconcile_key, 'last_rows_repaired', repaired, 'last_rows_deleted', deleted)
    redis.call('HINCRBY', reconcile_key, 'rows_repaired_total', repaired)
    redis.call('HINCRBY', reconcile_key, 'rows_deleted_total', deleted)
    if m[6] == '1' then
      redis.call('HSET', reconcile_key, 'last_complete_at', now, 'last_complete_mode', m[1] or '',
                 'last_complete_started_at', m[7] or now)
      redis.call('HDEL', reconcile_key, 'pass_from', 'pass_started_at')
    elseif m[5] then
      redis.call('HSET', reconcile_key, 'pass_from', m[5], 'pass_started_at', m[7] or now)
    end
  end
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
  redis.call('HSET', state_key, 'status_extract', 'idle', 'status_load', 'idle')
  if not reconcile then
    redis.call('HSET', state_key, 'last_success_at', now)
  end
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
