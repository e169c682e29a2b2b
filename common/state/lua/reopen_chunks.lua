-- Reopen committed chunks whose parts are gone from S3, so the run's next session extracts
-- them again: each goes back to pending without parts, its parts leave "awaiting load" (the
-- ones still on S3 become orphans), its rows, files and bytes leave the run's and the
-- table's extracted totals, and the cursor moves back to the chunk's lower bound if this
-- run set it past there (the cursor never stands beyond a hole). A run that no longer owns
-- the cursor never writes it again (its `advance_from` moves past its last chunk).
-- KEYS[1] run meta              (hash)
-- KEYS[2] run chunks            (hash: chunk number -> JSON)
-- KEYS[3] table state           (hash)
-- KEYS[4] parts awaiting load   (hash: part key -> JSON)
-- KEYS[5] orphaned objects      (hash: S3 key -> JSON)
-- ARGV[1] chunk numbers as a JSON array
-- ARGV[2] part keys missing from S3 as a JSON array
-- ARGV[3] run id
-- ARGV[4] now (unix seconds)
-- Returns: the number of chunks reopened.
local meta_key, chunks_key, state_key, pending_key, orphans_key = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5]
local numbers, missing_json, run_id, now = cjson.decode(ARGV[1]), ARGV[2], ARGV[3], ARGV[4]

local missing = {}
for _, key in ipairs(cjson.decode(missing_json)) do
  missing[key] = true
end
local reopened, lowest = 0, nil
local rows, files, nbytes = 0, 0, 0
for _, n in ipairs(numbers) do
  local raw = redis.call('HGET', chunks_key, tostring(n))
  if raw then
    local chunk = cjson.decode(raw)
    if chunk.state == 'done' then
      for _, key in ipairs(chunk.parts or {}) do
        redis.call('HDEL', pending_key, key)
        if not missing[key] then
          redis.call('HSET', orphans_key, key, cjson.encode({
            run = run_id, chunk = n, reason = 'chunk reopened: other parts missing from S3', at = now}))
        end
      end
      rows = rows + (chunk.rows or 0)
      files = files + #(chunk.parts or {})
      nbytes = nbytes + (chunk.bytes or 0)
      chunk.state = 'pending'
      chunk.parts = {}
      chunk.rows = 0
      chunk.bytes = 0
      chunk.loaded_parts = 0
      chunk.fence = ''
      chunk.error = 'parts missing from S3: extracted again by the next session'
      chunk.error_session = tonumber(redis.call('HGET', meta_key, 'session') or '1')
      redis.call('HSET', chunks_key, tostring(n), cjson.encode(chunk))
      reopened = reopened + 1
      if lowest == nil or n < lowest then
        lowest = n
      end
    end
  end
end
if reopened == 0 then
  return 0
end
-- A run that had ended well is unfinished again: the next sync resumes it.
local status = redis.call('HGET', meta_key, 'status')
if status == 'succeeded' or status == 'extracted' then
  redis.call('HSET', meta_key, 'status', 'failed', 'error', 'parts missing from S3: chunks reopened')
end
for _, k in ipairs({meta_key, state_key}) do
  redis.call('HINCRBY', k, 'rows_extracted', -rows)
  redis.call('HINCRBY', k, 'files_extracted', -files)
  redis.call('HINCRBY', k, 'bytes_extracted', -nbytes)
end
redis.call('HINCRBY', meta_key, 'chunks_done', -reopened)
local contiguous = tonumber(redis.call('HGET', meta_key, 'contiguous') or '0')
if lowest < contiguous then
  redis.call('HSET', meta_key, 'contiguous', lowest)
end
local advance_from = tonumber(redis.call('HGET', meta_key, 'advance_from') or '0')
if redis.call('HGET', state_key, 'cursor_run') == run_id then
  local from = math.max(lowest, advance_from)
  local at = redis.call('HGET', chunks_key, tostring(from))
  if at then
    local lo = cjson.decode(at).lo
    if lo == nil or lo == cjson.null or lo == 'null' then
      redis.call('HDEL', state_key, 'cursor')
    else
      redis.call('HSET', state_key, 'cursor', lo, 'cursor_chunk', from - 1, 'cursor_at', now)
    end
  end
else
  redis.call('HSET', meta_key, 'advance_from', 1000000000)
end
return reopened
