-- guard.lua: a prelude that scripts.go puts in front of every script that
-- writes (open, set_fields, update_peers, delete), so the checks live in one
-- place. Redis has no include; the functions are local to each script.
--
-- check_lease(key, token): fencing. key is the lease P:{E}:lease (a declared
-- key of the calling script), token the caller's lease token or "" for a
-- store opened without a lease. Returns an error reply to return from the
-- script, or nil when the write may go ahead:
--   LEASELOST  token given, but the lease is gone or holds another token:
--              the caller was deposed and must not write
--   LEASEHELD  no token given, but a worker holds the lease: an unfenced
--              tool must not write behind an owner's back
-- The lease value is "<token>|<owner JSON>" (package lock); tokens never
-- contain '|', so comparing token..'|' is exact.
local function check_lease(key, token)
  local v = redis.call('GET', key)
  if token == '' then
    if v then
      return redis.error_reply('LEASEHELD a worker owns this session')
    end
    return nil
  end
  if not v or string.sub(v, 1, #token + 1) ~= token .. '|' then
    return redis.error_reply('LEASELOST this lease token no longer owns the session')
  end
  return nil
end

-- check_session(key, layout): key is the session hash P:{E}:s, layout the
-- layout version the caller understands (decimal string). Returns an error
-- reply, or nil when the write may go ahead:
--   NOSESSION  the session hash does not exist (deleted, or never opened)
--   LAYOUT     the stored layout differs from the caller's; the reply is
--              "LAYOUT <stored layout>" (the caller words the error)
local function check_session(key, layout)
  local v = redis.call('HGET', key, 'layout')
  if not v then
    return redis.error_reply('NOSESSION session does not exist')
  end
  if v ~= layout then
    return redis.error_reply('LAYOUT ' .. v)
  end
  return nil
end

-- applied(key, wid): key is the applied-writes sorted set P:{E}:w, wid the
-- caller's write id (random per script call; "" for none). True when this
-- very write was applied already: the client re-sent it after its reply was
-- lost (go-redis retries on a connection error). The script then returns -1
-- without writing again, so a retry neither applies twice nor reports a lease
-- lost for a write that was applied.
local function applied(key, wid)
  return wid ~= '' and redis.call('ZSCORE', key, wid) ~= false
end

-- record_applied(key, wid): remembers wid among the last 1000 applied writes
-- of the session (a retry follows its first attempt within a second). The
-- score is the client's time that starts the write id ("<seconds>.<micro>-",
-- scripts.go writeID): it only orders the set for trimming, and reading it
-- from the id saves the TIME call and its formatting (callgrind: 5k of
-- the ~210k instructions of a single-peer update_peers.lua). An id without
-- it scores 0 and is trimmed first (older clients send their own scripts,
-- which call TIME; a write id never lacks it from this package).
local function record_applied(key, wid)
  if wid == '' then
    return
  end
  redis.call('ZADD', key, string.match(wid, '^(%d+%.%d+)%-') or '0', wid)
  redis.call('ZREMRANGEBYRANK', key, '0', '-1001')
end
