-- stage.lua: begin a Replace: create its staged keys, each with a TTL from
-- the start, and list the stage so that Delete can remove it.
--
-- KEYS[1]  staged session hash   P:{E}:stage:<id>:s
-- KEYS[2]  staged peers hash     P:{E}:stage:<id>:p
-- KEYS[3]  staged username index P:{E}:stage:<id>:u
-- KEYS[4]  staged phone index    P:{E}:stage:<id>:ph
-- KEYS[5]  staged applied writes P:{E}:stage:<id>:w
-- KEYS[6]  lease                 P:{E}:lease
-- KEYS[7]  the session's stages  P:{E}:stages (set of stage ids)
-- ARGV[1]  layout version (decimal)
-- ARGV[2]  lease token, or "" without a lease (see guard.lua)
-- ARGV[3]  TTL in milliseconds (decimal)
-- ARGV[4]  the stage id
--
-- The staged session hash gets the layout and Hydrogram's defaults; the
-- staged peers hash and both indexes get a placeholder field "" (no peer id,
-- username or phone is empty; replace.lua removes it) and the applied-writes
-- set a placeholder member "", so that all five exist, with the TTL, before
-- any staged write: a later HSET keeps a key's TTL, so a crashed import's
-- keys expire whatever point it died at. The stage list's TTL is renewed too.
--
-- Returns: 1.
-- Runs after the guard.lua prelude.
-- Errors: LEASELOST, LEASEHELD (nothing is created).
local refused = check_lease(KEYS[6], ARGV[2])
if refused then
  return refused
end
redis.call('HSET', KEYS[1], 'layout', ARGV[1], 'dc_id', '2', 'date', '0')
redis.call('HSET', KEYS[2], '', '')
redis.call('HSET', KEYS[3], '', '')
redis.call('HSET', KEYS[4], '', '')
redis.call('ZADD', KEYS[5], '0', '')
redis.call('SADD', KEYS[7], ARGV[4])
for i = 1, 7 do
  if i ~= 6 then
    redis.call('PEXPIRE', KEYS[i], ARGV[3])
  end
end
return 1
