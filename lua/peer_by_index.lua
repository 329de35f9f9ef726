-- peer_by_index.lua: resolve a username or phone number to its peer in one round trip.
--
-- KEYS[1]  index hash P:{E}:u (username -> id) or P:{E}:ph (phone -> id)
-- KEYS[2]  peers hash P:{E}:p (id -> encoded row, see update_peers.lua)
-- ARGV[1]  the normalized username or phone number
--
-- Returns: false when the index has no entry; otherwise {id, row} (row is
--          false if the index points at a peer that has no row).
-- Errors: none of its own.
local id = redis.call('HGET', KEYS[1], ARGV[1])
if not id then
  return false
end
return {id, redis.call('HGET', KEYS[2], id)}
