-- replace.lua: swap a staged session in for the stored one, atomically.
--
-- KEYS[1]  session hash          P:{E}:s
-- KEYS[2]  peers hash            P:{E}:p
-- KEYS[3]  username index hash   P:{E}:u
-- KEYS[4]  phone index hash      P:{E}:ph
-- KEYS[5]  lease                 P:{E}:lease
-- KEYS[6]  applied writes        P:{E}:w   (see guard.lua)
-- KEYS[7]  staged session hash   P:{E}:stage:<id>:s
-- KEYS[8]  staged peers hash     P:{E}:stage:<id>:p
-- KEYS[9]  staged username index P:{E}:stage:<id>:u
-- KEYS[10] staged phone index    P:{E}:stage:<id>:ph
-- KEYS[11] staged applied writes P:{E}:stage:<id>:w
-- KEYS[12] update state hash     P:{E}:st  (removed: a new session starts a new update stream)
-- KEYS[13] client data hash      P:{E}:x   (removed with it)
-- KEYS[14] the session's stages  P:{E}:stages (this stage's id is removed)
--
-- ARGV[1]  layout version the caller understands (decimal)
-- ARGV[2]  lease token, or "" without a lease (see guard.lua)
-- ARGV[3]  write id (random per call), or ""
-- ARGV[4]  the stage id
--
-- The staged keys were created by stage.lua (with a TTL, so that an
-- abandoned stage expires, and placeholder fields "" that this script
-- removes) and filled by set_fields.lua and update_peers.lua (with the same
-- lease). This
-- script removes the stored session (UNLINK: a large peer cache is freed off
-- the main thread), renames each staged key over its stored counterpart and
-- clears the TTL, in one atomic step: readers see the old session or the new
-- one, never a mix. The lease and the stored applied-writes set stay.
--
-- Returns: 1, or -1 when this write id was applied already (a client retry).
-- Runs after the guard.lua prelude.
-- Errors (nothing is changed in every case):
--   LEASELOST, LEASEHELD  see guard.lua
--   NOSTAGE    the staged session hash is gone (it expired, or was committed
--              or aborted already)
--   LAYOUT     the staged layout differs from ARGV[1]
if applied(KEYS[6], ARGV[3]) then -- guard.lua
  return -1
end
local refused = check_lease(KEYS[5], ARGV[2]) -- guard.lua
if refused then
  return refused
end
local layout = redis.call('HGET', KEYS[7], 'layout')
if not layout then
  return redis.error_reply('NOSTAGE the staged session is gone (expired, committed or aborted)')
end
if layout ~= ARGV[1] then
  return redis.error_reply('LAYOUT ' .. layout)
end
redis.call('UNLINK', KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[12], KEYS[13])
for i = 2, 4 do
  redis.call('HDEL', KEYS[6 + i], '') -- stage.lua's placeholder
end
for i = 1, 4 do
  if redis.call('EXISTS', KEYS[6 + i]) == 1 then
    redis.call('RENAME', KEYS[6 + i], KEYS[i])
    redis.call('PERSIST', KEYS[i])
  end
end
redis.call('UNLINK', KEYS[11])
redis.call('SREM', KEYS[14], ARGV[4])
record_applied(KEYS[6], ARGV[3]) -- guard.lua
return 1
