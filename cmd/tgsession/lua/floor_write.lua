-- floor_write.lua: the bench's "Lua floor" for batched writes. It stores
-- rows and both indexes exactly as raw HSETs would, from arguments the
-- client has already split, and does nothing else: no validation, no
-- fencing, no reads of old rows or index holders, no write id. No store
-- that keeps the indexes through a script can write faster on the same
-- server, so it bounds what lua/update_peers.lua could ever reach.
--
-- KEYS[1]  rows hash        (id -> row)
-- KEYS[2]  username index   (username -> id)
-- KEYS[3]  phone index      (phone -> id)
-- ARGV[1], ARGV[2], ARGV[3]  the numbers of rows, usernames and phones (r, u, p)
-- ARGV[4..]  r id/row pairs, then u username/id pairs, then p phone/id pairs
--
-- Returns: r. Errors: only Redis's own (the client sends at most 1000 rows).
local r, u, p = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local s = 4
redis.call('HSET', KEYS[1], unpack(ARGV, s, s + 2 * r - 1))
s = s + 2 * r
if u > 0 then redis.call('HSET', KEYS[2], unpack(ARGV, s, s + 2 * u - 1)) end
s = s + 2 * u
if p > 0 then redis.call('HSET', KEYS[3], unpack(ARGV, s, s + 2 * p - 1)) end
return r
