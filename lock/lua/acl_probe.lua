-- acl_probe.lua: find which of the commands the lease's scripts run inside
-- Lua the Redis user may not run (an ACL denial inside a script does not name
-- the command). Runs only after such a denial, to word the error.
--
-- KEYS[1]  a scratch key in the lease's hash tag ("<lease key>:aclprobe");
--          it is deleted again if the user may delete it
--
-- Returns: the names of the denied commands (possibly empty).
-- Errors: none (every probe runs under pcall).
local probes = {
  {'get', KEYS[1]}, {'getrange', KEYS[1], 0, 0}, {'mget', KEYS[1]},
  {'msetnx', KEYS[1], 'probe'}, {'mset', KEYS[1], 'probe'},
  {'pexpire', KEYS[1], 1000}, {'pttl', KEYS[1]}, {'del', KEYS[1]},
}
local denied = {}
for _, p in ipairs(probes) do
  local r = redis.pcall(unpack(p))
  if type(r) == 'table' and r.err and string.find(r.err, "can't run this command", 1, true) then
    table.insert(denied, p[1])
  end
end
redis.pcall('del', KEYS[1])
return denied
