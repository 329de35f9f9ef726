-- update_state.lua: write the session's update state (MTProto's pts, qts,
-- date, seq and per-channel pts) atomically.
--
-- KEYS[1]  session hash        P:{E}:s
-- KEYS[2]  update state hash   P:{E}:st  (user, pts, qts, date, seq, and "c:<channel id>" -> pts)
-- KEYS[3]  lease               P:{E}:lease
-- KEYS[4]  applied writes      P:{E}:w   (see guard.lua)
--
-- ARGV[1]  layout version the caller understands (decimal)
-- ARGV[2]  lease token, or "" without a lease (see guard.lua)
-- ARGV[3]  write id (random per call), or ""
-- ARGV[4]  operation:
--   "state"    ARGV[5] user id, ARGV[6..] pairs for all of pts qts date seq:
--              replaces the whole hash (channels' pts are forgotten)
--   "fields"   ARGV[5] user id, ARGV[6..] pairs for some of pts qts date seq:
--              updates the stored state of that user
--   "channel"  ARGV[5] user id, ARGV[6] channel id, ARGV[7] pts
-- Every number is a non-negative decimal string (kept a string here: Lua
-- numbers are doubles).
--
-- Returns: 1, or -1 when this write id was applied already (a client retry).
-- Runs after the guard.lua prelude.
-- Errors (nothing is written in every case):
--   LEASELOST, LEASEHELD  see guard.lua
--   NOSESSION  the session hash does not exist
--   LAYOUT     the stored layout differs from ARGV[1]
--   NOSTATE    "fields"/"channel" without a stored state for that user
--   BADARG     an unknown operation or field, or a value that is not a number
if applied(KEYS[4], ARGV[3]) then -- guard.lua
  return -1
end
local function number(v)
  return type(v) == 'string' and #v <= 20 and string.match(v, '^%d+$') ~= nil
end
local op, user = ARGV[4], ARGV[5]
if not number(user) then
  return redis.error_reply('BADARG user id is not a number')
end
local pairs_from, set = 6, {}
if op == 'channel' then
  if not number(ARGV[6]) or not number(ARGV[7]) or #ARGV ~= 7 then
    return redis.error_reply('BADARG channel id and pts must be numbers')
  end
  set = {'c:' .. ARGV[6], ARGV[7]}
elseif op == 'state' or op == 'fields' then
  local known = {pts = true, qts = true, date = true, seq = true}
  if (#ARGV - pairs_from + 1) % 2 ~= 0 then
    return redis.error_reply('BADARG odd number of field arguments')
  end
  for i = pairs_from, #ARGV, 2 do
    if not known[ARGV[i]] or not number(ARGV[i + 1]) then
      return redis.error_reply('BADARG unknown field or a value that is not a number')
    end
    set[#set + 1] = ARGV[i]
    set[#set + 1] = ARGV[i + 1]
  end
  if op == 'state' and #set ~= 8 then
    return redis.error_reply('BADARG a whole state needs pts, qts, date and seq')
  end
else
  return redis.error_reply('BADARG unknown operation')
end
local refused = check_lease(KEYS[3], ARGV[2]) or check_session(KEYS[1], ARGV[1]) -- guard.lua
if refused then
  return refused
end
if op == 'state' then
  redis.call('DEL', KEYS[2])
  redis.call('HSET', KEYS[2], 'user', user, unpack(set))
else
  if redis.call('HGET', KEYS[2], 'user') ~= user then
    return redis.error_reply('NOSTATE no update state is stored for this user')
  end
  if #set > 0 then
    redis.call('HSET', KEYS[2], unpack(set))
  end
end
record_applied(KEYS[4], ARGV[3]) -- guard.lua
return 1
