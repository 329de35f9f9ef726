-- obtain.lua: take the lease if nobody holds it.
--
-- KEYS[1]  the lease key
-- ARGV[1]  the lease's whole value ("<token>|<owner JSON>")
-- ARGV[2]  TTL in milliseconds (decimal)
--
-- Returns: 1 when taken, 0 when the key exists (held, or revoked and not yet
-- acknowledged).
-- Errors: none of its own; WRONGTYPE from the GET when the key holds another
-- type (retrying cannot help). Sent with a "#!lua" shebang: a read-only replica
-- refuses it (READONLY), it never takes a lease on one.
-- MSETNX + PEXPIRE rather than SET NX PX: the worker ACL grants these.
if redis.call('MSETNX', KEYS[1], ARGV[1]) == 1 then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return 1
end
redis.call('GET', KEYS[1])
return 0
