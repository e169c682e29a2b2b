-- `watermark rebuild`: the cursor a run's restored chunks give, by the rule a commit
-- follows (lib/cursor.lua). Called once per run, oldest first, after the run's meta and
-- chunks were written; a later run's cursor replaces an earlier one's.
-- KEYS[1] run meta              (hash)
-- KEYS[2] run chunks            (hash: chunk number -> JSON)
-- KEYS[3] table state           (hash)
-- ARGV[1] run id
-- ARGV[2] now (unix seconds)
-- Returns: the run's contiguous committed chunks.
--#include cursor.lua
local meta_key, chunks_key, state_key = KEYS[1], KEYS[2], KEYS[3]
local run_id, now = ARGV[1], ARGV[2]

local contiguous = contiguous_chunks(meta_key, chunks_key)
advance_cursor(meta_key, chunks_key, state_key, run_id, contiguous, now)
return contiguous
