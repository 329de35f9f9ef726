-- set_fields.lua: write session fields atomically.
--
-- KEYS[1]  session hash P:{E}:s
-- KEYS[2]  lease        P:{E}:lease
-- KEYS[3]  applied-writes sorted set P:{E}:w (see guard.lua)
-- ARGV[1]  layout version the caller understands (decimal)
-- ARGV[2]  lease token, or "" without a lease (see guard.lua)
-- ARGV[3]  write id (random per call), or ""
-- ARGV[4..] pairs: field name, value. An empty value means NULL (the field is
--          removed). Field names: dc_id api_id test_mode auth_key date user_id
--          is_bot. Integers are decimal strings and stay strings here (Lua
--          numbers are doubles); auth_key is an opaque envelope.
--          The pseudo-field "if:auth_key" makes the write conditional: it
--          goes ahead only if the stored auth_key equals its value ("": no
--          auth key stored), else fails with CHANGED (a compare-and-swap for
--          read-modify-writes such as re-encrypting the key).
--
-- Returns: the number of fields written, or -1 when this write id was applied
--          already (a client retry; nothing is written again).
-- Runs after the guard.lua prelude.
-- Errors (nothing is written in every case):
--   LEASELOST, LEASEHELD  see guard.lua
--   NOSESSION  the session hash does not exist (deleted, or never opened)
--   LAYOUT     the stored layout differs from ARGV[1]
--   BADARG     unknown field, a value of the wrong shape, or an odd argument count
--   CHANGED    "if:auth_key" given and the stored auth_key differs
local known = {dc_id = 'int', api_id = 'int', test_mode = 'bool', auth_key = 'blob',
               date = 'int', user_id = 'int', is_bot = 'bool'}
if applied(KEYS[3], ARGV[3]) then -- guard.lua
  return -1
end
if (#ARGV - 3) % 2 ~= 0 then
  return redis.error_reply('BADARG odd number of field arguments')
end
local expect
for i = 4, #ARGV, 2 do
  local kind, v = known[ARGV[i]], ARGV[i + 1]
  if ARGV[i] == 'if:auth_key' then
    kind, expect = 'condition', v
  end
  if not kind then
    return redis.error_reply('BADARG unknown session field')
  end
  if v ~= '' then
    if kind == 'int' and (not string.match(v, '^%-?%d+$') or #v > 20) then
      return redis.error_reply('BADARG ' .. ARGV[i] .. ' is not an integer')
    end
    if kind == 'bool' and v ~= '0' and v ~= '1' then
      return redis.error_reply('BADARG ' .. ARGV[i] .. ' is not 0 or 1')
    end
  elseif ARGV[i] == 'date' then
    return redis.error_reply('BADARG date cannot be NULL')
  end
end
local refused = check_lease(KEYS[2], ARGV[2]) or check_session(KEYS[1], ARGV[1]) -- guard.lua
if refused then
  return refused
end
if expect and (redis.call('HGET', KEYS[1], 'auth_key') or '') ~= expect then
  return redis.error_reply('CHANGED the auth key changed since it was read')
end
local set, del, written = {}, {}, 0
for i = 4, #ARGV, 2 do
  if ARGV[i] == 'if:auth_key' then
    -- a condition, checked above
  elseif ARGV[i + 1] == '' then
    del[#del + 1] = ARGV[i]
  else
    set[#set + 1] = ARGV[i]
    set[#set + 1] = ARGV[i + 1]
  end
end
written = (#set / 2) + #del
if #set > 0 then
  redis.call('HSET', KEYS[1], unpack(set))
end
if #del > 0 then
  redis.call('HDEL', KEYS[1], unpack(del))
end
record_applied(KEYS[3], ARGV[3])
return written
