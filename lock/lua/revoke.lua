-- revoke.lua: an operator's force-release with a lock delay (Chubby's). The
-- lease's value becomes "revoked:" .. value, keeping its remaining TTL, so
--   - the owner's renewals and fenced writes are refused from now on (they
--     compare "<token>|", which no longer starts the value);
--   - nobody can acquire until the owner acknowledges (it deletes the revoked
--     value, release.lua) or the key expires, which is no earlier than the
--     owner's own deadline: an owner that never hears of it stops trusting
--     the lease before anyone else can take it.
--
-- KEYS[1]  the lease key
-- ARGV[1]  the value the operator was shown (Inspect)
--
-- Returns: the lock delay (the key's remaining TTL in ms, >= 0) when revoked,
--          -1 when the key holds something else or nothing.
-- Errors: none of its own. Primary only ("#!lua" shebang).
-- MSET + PEXPIRE rather than SET KEEPTTL: the worker ACL grants these.
if redis.call('GET', KEYS[1]) ~= ARGV[1] then
  return -1
end
local ttl = redis.call('PTTL', KEYS[1])
redis.call('MSET', KEYS[1], 'revoked:' .. ARGV[1])
if ttl > 0 then
  redis.call('PEXPIRE', KEYS[1], ttl)
else
  ttl = 0
end
return ttl
