-- Keep a live run's table lock: renewed while the run's current session is not over, so
-- a slow but healthy run (chunks waiting behind other tables' work) is never taken over.
-- KEYS[1] table lock            (string: owner token)
-- KEYS[2] run meta              (hash)
-- ARGV[1] run id
-- ARGV[2] session the keep-alive belongs to
-- ARGV[3] lock TTL in milliseconds
-- ARGV[4] final run statuses as a JSON array
-- Returns: 1 renewed (keep going); 0 the run is over; -1 a newer session took over;
--          -2 the run no longer holds the lock (it expired or was released).
--#include finals.lua
local lock_key, meta_key = KEYS[1], KEYS[2]
local run_id, session, lock_ttl, finals_json = ARGV[1], ARGV[2], ARGV[3], ARGV[4]

if (redis.call('HGET', meta_key, 'session') or '1') ~= session then
  return -1
end
local status = redis.call('HGET', meta_key, 'status') or ''
if is_final(status, finals_json) then
  return 0
end
if redis.call('GET', lock_key) ~= run_id then
  return -2
end
redis.call('PEXPIRE', lock_key, lock_ttl)
return 1
