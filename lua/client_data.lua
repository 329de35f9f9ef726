-- client_data.lua: write one client-data value (an MTProto library's own
-- session data: server salt, DC config, address) atomically.
--
-- KEYS[1]  session hash       P:{E}:s
-- KEYS[2]  client data hash   P:{E}:x   (key -> value)
-- KEYS[3]  lease              P:{E}:lease
-- KEYS[4]  applied writes     P:{E}:w   (see guard.lua)
--
-- ARGV[1]  layout version the caller understands (decimal)
-- ARGV[2]  lease token, or "" without a lease (see guard.lua)
-- ARGV[3]  write id (random per call), or ""
-- ARGV[4]  key (1-64 bytes; the caller validates)
-- ARGV[5]  value (opaque bytes); "" removes the key
--
-- Returns: 1, or -1 when this write id was applied already (a client retry).
-- Runs after the guard.lua prelude.
-- Errors (nothing is written in every case):
--   LEASELOST, LEASEHELD  see guard.lua
--   NOSESSION  the session hash does not exist
--   LAYOUT     the stored layout differs from ARGV[1]
--   BADARG     a missing key
if applied(KEYS[4], ARGV[3]) then -- guard.lua
  return -1
end
if #ARGV ~= 5 or ARGV[4] == '' then
  return redis.error_reply('BADARG client data needs a key and a value')
end
local refused = check_lease(KEYS[3], ARGV[2]) or check_session(KEYS[1], ARGV[1]) -- guard.lua
if refused then
  return refused
end
if ARGV[5] == '' then
  redis.call('HDEL', KEYS[2], ARGV[4])
else
  redis.call('HSET', KEYS[2], ARGV[4], ARGV[5])
end
record_applied(KEYS[4], ARGV[3]) -- guard.lua
return 1
