-- Fragment, not a script: the cursor's one rule, included (`--#include cursor.lua`, see
-- common/state/scripts.py) by commit_chunk.lua, where a commit moves the cursor, and by
-- rebuild_cursor.lua, where `watermark rebuild` restores it.
--
-- contiguous_chunks(meta_key, chunks_key): the number of chunks from chunk 0 on that are
-- committed without a hole (kept in the run meta's `contiguous`); the cursor never jumps a hole.
local function contiguous_chunks(meta_key, chunks_key)
  local contiguous = tonumber(redis.call('HGET', meta_key, 'contiguous') or '0')
  local advanced = false
  while true do
    local next_raw = redis.call('HGET', chunks_key, tostring(contiguous))
    if not next_raw then break end
    if cjson.decode(next_raw).state == 'pending' then break end
    contiguous = contiguous + 1
    advanced = true
  end
  if advanced then
    redis.call('HSET', meta_key, 'contiguous', contiguous)
  end
  return contiguous
end

-- advance_cursor(meta_key, chunks_key, state_key, run_id, contiguous, now): the cursor to the
-- upper bound of the last contiguous chunk. It only ever moves forward: the plan put a chunk
-- boundary at the committed cursor, and chunks before `advance_from` (the lookback window
-- behind it; for the full strategy, every chunk) end at or before it, so they never write it.
local function advance_cursor(meta_key, chunks_key, state_key, run_id, contiguous, now)
  local advance_from = tonumber(redis.call('HGET', meta_key, 'advance_from') or '0')
  if contiguous > advance_from then
    local last = cjson.decode(redis.call('HGET', chunks_key, tostring(contiguous - 1)))
    redis.call('HSET', state_key, 'cursor', last.hi, 'cursor_run', run_id,
               'cursor_chunk', contiguous - 1, 'cursor_at', now)
  end
end
