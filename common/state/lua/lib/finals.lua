-- Fragment, not a script: is_final(status, finals_json), whether a run's status is one of the
-- final ones (RunStatus's, passed in by the caller as a JSON array: never written here).
-- Included by append_plan.lua, begin_attempt.lua, commit_chunk.lua and renew_lock.lua.
local function is_final(status, finals_json)
  for _, final in ipairs(cjson.decode(finals_json)) do
    if status == final then
      return true
    end
  end
  return false
end
