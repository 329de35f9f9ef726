-- delete.lua: delete one session.
--
-- KEYS[1]  session hash          P:{E}:s
-- KEYS[2]  peers hash            P:{E}:p
-- KEYS[3]  username index hash   P:{E}:u
-- KEYS[4]  phone index hash      P:{E}:ph
-- KEYS[5]  lease                 P:{E}:lease
-- KEYS[6]  applied writes         P:{E}:w
-- KEYS[7]  update state hash      P:{E}:st
-- KEYS[8]  client data hash       P:{E}:x
-- KEYS[9]  the session's stages   P:{E}:stages (ids of Replaces begun, stage.lua)
-- KEYS[10..] the staged keys of those stages (P:{E}:stage:<id>:{s,p,u,ph,w}),
--          as the caller read the set: removed too (a stage begun after the
--          read keeps its TTL and expires)
-- ARGV[1]  lease token, or "" without a lease (see guard.lua)
--
-- Removes the session hash and, with UNLINK, the peer cache, both indexes,
-- the update state and the client data in one atomic step. UNLINK frees a large hash in a background thread, so
-- the main thread's work does not grow with the number of peers. The lease
-- is left to its holder.
--
-- Runs after the guard.lua prelude.
-- Returns: 0.
-- Errors: LEASELOST, LEASEHELD.
local refused = check_lease(KEYS[5], ARGV[1])
if refused then
  return refused
end
redis.call('DEL', KEYS[1])
redis.call('UNLINK', KEYS[2], KEYS[3], KEYS[4], KEYS[6], KEYS[7], KEYS[8], KEYS[9])
for i = 10, #KEYS do
  redis.call('UNLINK', KEYS[i])
end
return 0
