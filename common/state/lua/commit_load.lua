-- Record a warehouse load that has committed: move its parts from "awaiting load"
-- to loaded and count them once. Parts no longer awaiting load are skipped, so
-- committing the same load twice counts it once.
-- KEYS[1] table state           (hash)
-- KEYS[2] parts awaiting load   (hash: part key -> JSON)
-- KEYS[3] meta of the run doing the load (hash)
-- KEYS[4] that run's current session (hash)
-- KEYS[5..n] chunks hashes of the runs the parts belong to
-- ARGV[1] parts as JSON array of {key, k, chunk}; k is the KEYS index of its chunks hash
-- ARGV[2] now (unix seconds)
-- Returns: {parts counted, rows counted}
local state_key, pending_key, meta_key, session_key = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local parts_json, now = ARGV[1], ARGV[2]

local files, rows = 0, 0
for _, part in ipairs(cjson.decode(parts_json)) do
  local raw = redis.call('HGET', pending_key, part.key)
  if raw then
    local info = cjson.decode(raw)
    redis.call('HDEL', pending_key, part.key)
    files = files + 1
    rows = rows + info.rows
    local chunks_key = KEYS[part.k]
    local chunk_raw = redis.call('HGET', chunks_key, tostring(part.chunk))
    if chunk_raw then
      local chunk = cjson.decode(chunk_raw)
      chunk.loaded_parts = (chunk.loaded_parts or 0) + 1
      if chunk.loaded_parts >= #chunk.parts then
        chunk.state = 'loaded'
      end
      redis.call('HSET', chunks_key, tostring(part.chunk), cjson.encode(chunk))
    end
  end
end
if files > 0 then
  redis.call('HINCRBY', state_key, 'rows_loaded', rows)
  redis.call('HINCRBY', state_key, 'files_loaded', files)
  redis.call('HINCRBY', meta_key, 'rows_loaded', rows)
  redis.call('HINCRBY', meta_key, 'files_loaded', files)
  redis.call('HINCRBY', session_key, 'rows_loaded', rows)
  redis.call('HINCRBY', session_key, 'files_loaded', files)
end
redis.call('HSET', state_key, 'last_load_at', now)
return {files, rows}
