-- refresh.lua: renew one lease if it still holds this owner's value. Also
-- sent right after an acquisition, so that a WAIT behind it on the same
-- connection confirms the lease's replication.
--
-- KEYS[1]  the lease key
-- ARGV[1]  the lease's whole value ("<token>|<owner JSON>")
-- ARGV[2]  TTL in milliseconds (decimal)
--
-- Returns: 1 when renewed; -1 when an operator revoked this very lease (the
-- key holds "revoked:" .. ARGV[1]: the owner ends its lease and acknowledges,
-- also when it missed the revocation message); 0 when the key holds another
-- value or none (the lease expired or was taken over).
-- Errors: none of its own. Sent with a "#!lua" shebang: a read-only replica
-- refuses it (READONLY, retried), so an empty or stale replica can never
-- answer 0 ("gone") for a lease its primary still holds.
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return 1
end
if redis.call('GET', KEYS[1]) == 'revoked:' .. ARGV[1] then
  return -1
end
return 0
