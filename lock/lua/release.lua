-- release.lua: delete the lease only if it holds exactly the given value
-- (compare-and-delete). The owner releases its own value; a revoked owner
-- acknowledges with "revoked:" .. its value; an operator clears the value it
-- was shown.
--
-- KEYS[1]  the lease key
-- ARGV[1]  the value to compare
--
-- Returns: 1 if the lease was deleted, 0 if it holds something else or
--          nothing.
-- Errors: none of its own. Primary only ("#!lua" shebang).
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('DEL', KEYS[1])
  return 1
end
return 0
