-- delete.lua: delete one session in bounded steps; call until it returns 0.
--
-- KEYS[1]  session hash          P:{E}:s
-- KEYS[2]  peer id set           P:{E}:ids
-- KEYS[3]  username index hash   P:{E}:u
-- KEYS[4]  phone index hash      P:{E}:ph
-- KEYS[5]  lease                 P:{E}:lease
-- Peer hashes P:{E}:p:<id> are derived from KEYS[1] (same hash tag, same slot).
-- ARGV[1]  at most this many peers are removed per call (positive decimal)
-- ARGV[2]  lease token, or "" without a lease (see guard.lua)
--
-- The first call removes the session hash, so from then on every fenced or
-- session-checked write is refused and Open sees a half-deleted session
-- ("dirty") and finishes the job. Each call then removes up to ARGV[1] peers;
-- the call that empties the id set removes both indexes and the set together.
--
-- Returns: the number of peer ids still to delete (0 when done).
-- Runs after the guard.lua prelude.
-- Errors: BADARG for a bad batch size; LEASELOST, LEASEHELD.
local n = tonumber(ARGV[1])
if not n or n < 1 then
  return redis.error_reply('BADARG batch size must be a positive integer')
end
local refused = check_lease(KEYS[5], ARGV[2])
if refused then
  return refused
end
redis.call('DEL', KEYS[1])
local base = string.sub(KEYS[1], 1, -2)
local ids = redis.call('SPOP', KEYS[2], n)
if #ids > 0 then
  local ks = {}
  for i, id in ipairs(ids) do ks[i] = base .. 'p:' .. id end
  redis.call('UNLINK', unpack(ks))
end
local left = redis.call('SCARD', KEYS[2])
if left == 0 then
  redis.call('UNLINK', KEYS[2], KEYS[3], KEYS[4])
end
return left
