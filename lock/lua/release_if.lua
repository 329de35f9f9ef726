-- release_if.lua: delete the lease only if it still holds the value an
-- operator was shown (compare-and-delete), so a lease that changed hands
-- between Inspect and ForceRelease is left to its new owner.
--
-- KEYS[1]  the lease key
-- ARGV[1]  the full lease value Inspect read ("<token>|<owner JSON>", or
--          whatever the key held)
--
-- Returns: 1 if the lease was deleted, 0 if it holds something else or
--          nothing.
-- Errors: none of its own.
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('DEL', KEYS[1])
  return 1
end
return 0
