-- refresh.lua: renew one lease if it still holds this owner's value. Also
-- sent right after an acquisition, so that a WAIT behind it on the same
-- connection confirms the lease's replication.
--
-- KEYS[1]  the lease key
-- ARGV[1]  the lease's whole value ("<token>|<owner JSON>")
-- ARGV[2]  TTL in milliseconds (decimal)
--
-- Returns: 1 when renewed, 0 when the key holds another value or none (the
-- lease expired, was taken over or revoked).
-- Errors: none of its own. Sent with a "#!lua" shebang: a read-only replica
-- refuses it (READONLY, retried), so an empty or stale replica can never
-- answer 0 ("gone") for a lease its primary still holds.
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return 1
end
return 0
