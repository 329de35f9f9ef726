-- refresh.lua: renew one lease if it still holds this owner's value.
--
-- KEYS[1]  the lease key
-- ARGV[1]  the lease's whole value (redislock's token and metadata)
-- ARGV[2]  TTL in milliseconds
--
-- Returns: 1 when renewed, 0 when the key holds another value or none (the
-- lease was lost, taken over or force-released).
-- Errors: none of its own.
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return 1
end
return 0
