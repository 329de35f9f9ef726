-- confirm.lua: re-arm the lease if it is still ours, so that a WAIT sent
-- right after it on the same connection confirms the lease's replication
-- (the replication stream is ordered: this write follows the acquiring SET).
--
-- KEYS[1]  the lease key
-- ARGV[1]  the full lease value we wrote ("<token>|<owner JSON>")
-- ARGV[2]  TTL in milliseconds (decimal)
--
-- Returns: 1 if the lease is ours (and was re-armed), 0 otherwise.
-- Errors: none of its own.
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return 1
end
return 0
