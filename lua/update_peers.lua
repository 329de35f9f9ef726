-- update_peers.lua: cache a batch of peers atomically (whole-row replace).
--
-- KEYS[1]  session hash          P:{E}:s
-- KEYS[2]  peer id set           P:{E}:ids
-- KEYS[3]  username index hash   P:{E}:u   (username -> id)
-- KEYS[4]  phone index hash      P:{E}:ph  (phone -> id)
-- Peer hashes P:{E}:p:<id> are derived from KEYS[1] (same hash tag, same slot).
--
-- ARGV[1]  layout version the caller understands
-- ARGV[2]  now: last_update_on for every peer (unix seconds, decimal)
-- ARGV[3..] groups of 6 per peer:
--          id          decimal Bot-API id (kept a string: Lua numbers are doubles)
--          type        user | bot | group | channel | supergroup
--          access_hash decimal, or "" for NULL
--          usernames   lower-case [a-z0-9_] names separated by one space, or ""
--          phone       digits, or ""
--          min         "1" for a min peer, else "0"
--          The caller validates ranges and removes duplicate ids (last wins).
--
-- Peer hash fields: type, access_hash, usernames, phone_number, min, last_update_on
-- (absent = NULL / none).
--
-- The script runs in three phases so that a failure can never leave a partial
-- write (Redis does not roll back a script that fails halfway):
--   1. validate every argument;
--   2. read every key phase 3 may touch (a key of the wrong type fails here);
--   3. write.
--
-- Returns: the number of peers written.
-- Errors (nothing written): BADARG, NOSESSION, LAYOUT, WRONGTYPE (from phase 2).
local G = 6
local base = string.sub(KEYS[1], 1, -2)

-- Phase 1: validate.
local types = {user = true, bot = true, group = true, channel = true, supergroup = true}
if (#ARGV - 2) % G ~= 0 then
  return redis.error_reply('BADARG argument count is not 2 + 6n')
end
if not string.match(ARGV[2], '^%d+$') then
  return redis.error_reply('BADARG now is not an integer')
end
for i = 3, #ARGV, G do
  local id, typ, ah, names, phone, min = ARGV[i], ARGV[i+1], ARGV[i+2], ARGV[i+3], ARGV[i+4], ARGV[i+5]
  if not string.match(id, '^%-?%d+$') or #id > 20 then
    return redis.error_reply('BADARG peer id is not an integer')
  end
  if not types[typ] then
    return redis.error_reply('BADARG invalid peer type')
  end
  if ah ~= '' and (not string.match(ah, '^%-?%d+$') or #ah > 20) then
    return redis.error_reply('BADARG access hash is not an integer')
  end
  for n in string.gmatch(names, '[^ ]+') do
    if not string.match(n, '^[a-z0-9_]+$') then
      return redis.error_reply('BADARG invalid username')
    end
  end
  if phone ~= '' and not string.match(phone, '^%d+$') then
    return redis.error_reply('BADARG phone is not digits')
  end
  if min ~= '0' and min ~= '1' then
    return redis.error_reply('BADARG min is not 0 or 1')
  end
end

local layout = redis.call('HGET', KEYS[1], 'layout')
if not layout then
  return redis.error_reply('NOSESSION session does not exist')
end
if layout ~= ARGV[1] then
  return redis.error_reply('LAYOUT stored layout ' .. layout .. ' is not ' .. ARGV[1])
end

-- Phase 2: touch every key phase 3 can write, so WRONGTYPE surfaces now.
redis.call('SISMEMBER', KEYS[2], '0')
redis.call('HGET', KEYS[3], '')
redis.call('HGET', KEYS[4], '')
for i = 3, #ARGV, G do
  local id = ARGV[i]
  redis.call('HGET', base .. 'p:' .. id, 'type')
  for n in string.gmatch(ARGV[i+3], '[^ ]+') do
    local h = redis.call('HGET', KEYS[3], n)
    if h and h ~= id then
      redis.call('HGET', base .. 'p:' .. h, 'usernames')
    end
  end
  if ARGV[i+4] ~= '' then
    local h = redis.call('HGET', KEYS[4], ARGV[i+4])
    if h and h ~= id then
      redis.call('HGET', base .. 'p:' .. h, 'phone_number')
    end
  end
end

-- Phase 3: write.
local now = ARGV[2]
for i = 3, #ARGV, G do
  local id, typ, ah, names, phone, min = ARGV[i], ARGV[i+1], ARGV[i+2], ARGV[i+3], ARGV[i+4], ARGV[i+5]
  local pk = base .. 'p:' .. id
  local cur = redis.call('HMGET', pk, 'type', 'usernames', 'phone_number', 'access_hash', 'min')

  -- A min peer never replaces a known full access hash.
  if min == '1' and cur[1] and cur[5] ~= '1' and cur[4] then
    ah, min = cur[4], '0'
  end

  -- Drop index entries this peer no longer holds.
  local keep = {}
  for n in string.gmatch(names, '[^ ]+') do keep[n] = true end
  if cur[2] then
    for n in string.gmatch(cur[2], '[^ ]+') do
      if not keep[n] and redis.call('HGET', KEYS[3], n) == id then
        redis.call('HDEL', KEYS[3], n)
      end
    end
  end
  if cur[3] and cur[3] ~= phone and redis.call('HGET', KEYS[4], cur[3]) == id then
    redis.call('HDEL', KEYS[4], cur[3])
  end

  -- Take each username from its previous holder.
  for n in string.gmatch(names, '[^ ]+') do
    local h = redis.call('HGET', KEYS[3], n)
    if h ~= id then
      if h then
        local hk = base .. 'p:' .. h
        local held = redis.call('HGET', hk, 'usernames')
        if held then
          local rest = {}
          for x in string.gmatch(held, '[^ ]+') do
            if x ~= n then rest[#rest + 1] = x end
          end
          if #rest == 0 then
            redis.call('HDEL', hk, 'usernames')
          else
            redis.call('HSET', hk, 'usernames', table.concat(rest, ' '))
          end
        end
      end
      redis.call('HSET', KEYS[3], n, id)
    end
  end

  -- Take the phone number from its previous holder.
  if phone ~= '' then
    local h = redis.call('HGET', KEYS[4], phone)
    if h ~= id then
      if h and redis.call('HGET', base .. 'p:' .. h, 'phone_number') == phone then
        redis.call('HDEL', base .. 'p:' .. h, 'phone_number')
      end
      redis.call('HSET', KEYS[4], phone, id)
    end
  end

  -- Replace the row.
  local set = {'type', typ, 'last_update_on', now}
  local del = {}
  local function put(field, v, present)
    if present then
      set[#set + 1] = field
      set[#set + 1] = v
    else
      del[#del + 1] = field
    end
  end
  put('access_hash', ah, ah ~= '')
  put('usernames', names, names ~= '')
  put('phone_number', phone, phone ~= '')
  put('min', '1', min == '1')
  redis.call('HSET', pk, unpack(set))
  if cur[1] and #del > 0 then
    redis.call('HDEL', pk, unpack(del))
  end
  redis.call('SADD', KEYS[2], id)
end
return (#ARGV - 2) / G
