-- open.lua: open (and maybe create) one session.
--
-- KEYS[1]  session hash   P:{E}:s
-- KEYS[2]  peers hash     P:{E}:p
-- KEYS[3]  lease          P:{E}:lease
-- ARGV[1]  layout version this code writes (decimal)
-- ARGV[2]  "1" to create a missing session, "0" to only report it
-- ARGV[3]  lease token, or "" without a lease (creating is fenced; see guard.lua)
--
-- Returns a two-element array {state, layout}:
--   {"exists",  <stored layout or "">}  the session exists; the caller checks the layout
--   {"created", ARGV[1]}                 created with Hydrogram's defaults (dc_id 2, date 0)
--   {"missing", ""}                      absent and ARGV[2] is "0"
--   {"dirty",   ""}                      absent but peers remain (the session hash was
--                                        removed by hand): the caller deletes them first
-- Runs after the guard.lua prelude.
-- Errors: LEASELOST, LEASEHELD (only when it would create).
if redis.call('EXISTS', KEYS[1]) == 1 then
  local v = redis.call('HGET', KEYS[1], 'layout')
  return {'exists', v or ''}
end
if ARGV[2] ~= '1' then
  return {'missing', ''}
end
local refused = check_lease(KEYS[3], ARGV[3])
if refused then
  return refused
end
if redis.call('EXISTS', KEYS[2]) == 1 then
  return {'dirty', ''}
end
redis.call('HSET', KEYS[1], 'layout', ARGV[1], 'dc_id', '2', 'date', '0')
return {'created', ARGV[1]}
