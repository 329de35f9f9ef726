-- guard.lua: a prelude that scripts.go puts in front of every script that
-- writes to an existing session (set_fields.lua, update_peers.lua), so the
-- check lives in one place.
--
-- check_session(key, layout): key is the session hash P:{E}:s, layout the
-- layout version the caller understands (decimal string). Returns an error
-- reply to return from the script, or nil when the write may go ahead:
--   NOSESSION  the session hash does not exist (deleted, or never opened)
--   LAYOUT     the stored layout differs from the caller's
local function check_session(key, layout)
  local v = redis.call('HGET', key, 'layout')
  if not v then
    return redis.error_reply('NOSESSION session does not exist')
  end
  if v ~= layout then
    return redis.error_reply('LAYOUT stored layout ' .. v .. ' is not ' .. layout)
  end
  return nil
end

