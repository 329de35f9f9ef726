-- peer_by_index.lua: resolve a username or phone number to its peer in one round trip.
--
-- KEYS[1]  index hash P:{E}:u (username -> id) or P:{E}:ph (phone -> id).
--          The peer hash P:{E}:p:<id> is derived from KEYS[1] by replacing its
--          last segment (same hash tag, same slot).
-- ARGV[1]  the normalized username or phone number
--
-- Returns: false when the index has no entry; otherwise a flat array
--          {id, field1, value1, field2, value2, ...} (the peer hash, as HGETALL).
-- Errors: none of its own.
local id = redis.call('HGET', KEYS[1], ARGV[1])
if not id then
  return false
end
local base = string.match(KEYS[1], '^(.*:)[^:]*$')
local row = redis.call('HGETALL', base .. 'p:' .. id)
table.insert(row, 1, id)
return row
