-- Store a run's plan, if the caller still owns the table lock.
-- KEYS[1] table lock            (string: owner token)
-- KEYS[2] table state           (hash)
-- KEYS[3] run meta              (hash)
-- KEYS[4] run chunks            (hash: chunk number -> JSON)
-- KEYS[5] table runs            (list of run ids)
-- ARGV[1] run id (the lock's owner token)
-- ARGV[2] run meta as JSON object of string fields
-- ARGV[3] chunks as JSON array of objects (chunk i at index i+1)
-- Returns: number of chunks stored, or -1 if the lock is not owned by the run.
local lock_key, state_key, meta_key, chunks_key, runs_key = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5]
local run_id, meta_json, chunks_json = ARGV[1], ARGV[2], ARGV[3]

if redis.call('GET', lock_key) ~= run_id then
  return -1
end
local meta = cjson.decode(meta_json)
for field, value in pairs(meta) do
  redis.call('HSET', meta_key, field, value)
end
local chunks = cjson.decode(chunks_json)
for i, chunk in ipairs(chunks) do
  redis.call('HSET', chunks_key, tostring(i - 1), cjson.encode(chunk))
end
redis.call('HSET', meta_key, 'chunks', #chunks, 'contiguous', 0,
           'rows_extracted', 0, 'files_extracted', 0, 'bytes_extracted', 0, 'chunks_done', 0,
           'rows_loaded', 0, 'files_loaded', 0)
redis.call('RPUSH', runs_key, run_id)
redis.call('HSET', state_key, 'active_run', run_id, 'status_extract', 'running')
return #chunks
