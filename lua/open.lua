-- open.lua: open (and maybe create) one session.
--
-- KEYS[1]  session hash   P:{E}:s
-- KEYS[2]  peer id set    P:{E}:ids
-- ARGV[1]  layout version this code writes (decimal)
-- ARGV[2]  "1" to create a missing session, "0" to only report it
--
-- Returns a two-element array {state, layout}:
--   {"exists",  <stored layout or "">}  the session exists; the caller checks the layout
--   {"created", ARGV[1]}                 created with Hydrogram's defaults (dc_id 2, date 0)
--   {"missing", ""}                      absent and ARGV[2] is "0"
--   {"dirty",   ""}                      absent but peers of an unfinished Delete remain:
--                                        the caller finishes the Delete and calls again
-- Errors: none of its own.
if redis.call('EXISTS', KEYS[1]) == 1 then
  local v = redis.call('HGET', KEYS[1], 'layout')
  return {'exists', v or ''}
end
if ARGV[2] ~= '1' then
  return {'missing', ''}
end
if redis.call('EXISTS', KEYS[2]) == 1 then
  return {'dirty', ''}
end
redis.call('HSET', KEYS[1], 'layout', ARGV[1], 'dc_id', '2', 'date', '0')
return {'created', ARGV[1]}
