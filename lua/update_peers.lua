-- update_peers.lua: cache a batch of peers atomically (whole-row replace).
--
-- KEYS[1]  session hash          P:{E}:s
-- KEYS[2]  peer id set           P:{E}:ids
-- KEYS[3]  username index hash   P:{E}:u   (username -> id)
-- KEYS[4]  phone index hash      P:{E}:ph  (phone -> id)
-- KEYS[5]  lease                 P:{E}:lease
-- Peer hashes P:{E}:p:<id> are derived from KEYS[1] (same hash tag, same slot).
--
-- ARGV[1]  layout version the caller understands
-- ARGV[2]  lease token, or "" without a lease (see guard.lua)
-- ARGV[3..] groups of 7 per peer:
--          id          decimal Bot-API id (kept a string: Lua numbers are doubles)
--          type        user | bot | group | channel | supergroup
--          access_hash decimal, or "" for NULL
--          usernames   lower-case [a-z0-9_] names separated by one space, or ""
--          phone       digits, or ""
--          min         "1" for a min peer, else "0"
--          updated     last_update_on, unix seconds (decimal; the caller's clock,
--                      or the original time when peers are copied)
--          The caller validates ranges and removes duplicate ids (last wins).
--
-- Peer hash fields: type, access_hash, usernames, phone_number, min, last_update_on
-- (absent = NULL / none).
--
-- Like Hydrogram, a username (or phone) may be listed by several peers; the
-- index points at the holder written most recently (greatest last_update_on,
-- ties to the later write), which is the one lookups return. A peer that
-- drops a name removes the index entry only if the entry points at it.
--
-- The script runs in three phases so that a failure can never leave a partial
-- write (Redis does not roll back a script that fails halfway):
--   1. validate every argument;
--   2. read every key phase 3 may touch into Lua tables (a key of the wrong
--      type fails here, before any write);
--   3. write, keeping the tables in step, so phase 3 makes only the writes
--      that change something. Index reads and writes are bulk HMGET/HSET/HDEL
--      calls (in slices of 4000 arguments, below Lua's unpack limit).
--
-- Runs after the guard.lua prelude.
-- Returns: the number of peers written.
-- Errors (nothing written): BADARG, LEASELOST, LEASEHELD, NOSESSION, LAYOUT, WRONGTYPE (from phase 2).
local G = 7
local base = string.sub(KEYS[1], 1, -2)

-- Phase 1: validate.
local types = {user = true, bot = true, group = true, channel = true, supergroup = true}
if (#ARGV - 2) % G ~= 0 then
  return redis.error_reply('BADARG argument count is not 2 + 7n')
end
for i = 3, #ARGV, G do
  local id, typ, ah, names, phone, min, ts = ARGV[i], ARGV[i+1], ARGV[i+2], ARGV[i+3], ARGV[i+4], ARGV[i+5], ARGV[i+6]
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
  if not string.match(ts, '^%d+$') or #ts > 15 then
    return redis.error_reply('BADARG last_update_on is not a unix time')
  end
end

local refused = check_lease(KEYS[5], ARGV[2]) or check_session(KEYS[1], ARGV[1]) -- guard.lua
if refused then
  return refused
end

-- Phase 2: read. rows[id] = {type, usernames, phone_number, access_hash, min,
-- last_update_on} (false for absent fields); uidx and pidx mirror the indexes.
local SLICE = 4000
local rows, uidx, pidx = {}, {}, {}
local function row(id)
  local r = rows[id]
  if not r then
    r = redis.call('HMGET', base .. 'p:' .. id, 'type', 'usernames', 'phone_number', 'access_hash', 'min', 'last_update_on')
    rows[id] = r
  end
  return r
end
-- load reads the index entries of every not yet cached name in one HMGET per slice.
local function load(cache, key, names)
  local want, seen = {}, {}
  for _, n in ipairs(names) do
    if cache[n] == nil and not seen[n] then
      seen[n] = true
      want[#want + 1] = n
    end
  end
  for s = 1, #want, SLICE do
    local e = math.min(s + SLICE - 1, #want)
    local vals = redis.call('HMGET', key, unpack(want, s, e))
    for k = s, e do cache[want[k]] = vals[k - s + 1] end
  end
end
-- index returns a cached index entry, reading it if phase 2 did not.
local function index(cache, key, name)
  if cache[name] == nil then load(cache, key, {name}) end
  return cache[name]
end
redis.call('SISMEMBER', KEYS[2], '0')
redis.call('HGET', KEYS[3], '')
redis.call('HGET', KEYS[4], '')
local names, phones = {}, {}
for i = 3, #ARGV, G do
  local cur = row(ARGV[i])
  for n in string.gmatch(ARGV[i+3], '[^ ]+') do names[#names + 1] = n end
  if cur[2] then
    for n in string.gmatch(cur[2], '[^ ]+') do names[#names + 1] = n end
  end
  if ARGV[i+4] ~= '' then phones[#phones + 1] = ARGV[i+4] end
  if cur[3] then phones[#phones + 1] = cur[3] end
end
load(uidx, KEYS[3], names)
load(pidx, KEYS[4], phones)
-- The current holders of names and phones this batch claims (their times decide).
for i = 3, #ARGV, G do
  local id = ARGV[i]
  for n in string.gmatch(ARGV[i+3], '[^ ]+') do
    local h = uidx[n]
    if h and h ~= id then row(h) end
  end
  local h = ARGV[i+4] ~= '' and pidx[ARGV[i+4]]
  if h and h ~= id then row(h) end
end

-- Phase 3: write. Every lookup below hits the tables filled in phase 2.
local dirtyU, dirtyP = {}, {}
local function setindex(cache, dirty, name, v)
  if cache[name] ~= v then
    cache[name] = v
    dirty[#dirty + 1] = name
  end
end
-- claim points name at id unless its holder was written later than ts.
local function claim(cache, key, dirty, name, id, ts)
  local h = index(cache, key, name)
  if h == id then return end
  if h then
    local hts = tonumber(row(h)[6] or '0')
    if hts and hts > tonumber(ts) then return end
  end
  setindex(cache, dirty, name, id)
end
local FIELDS = {'type', 'usernames', 'phone_number', 'access_hash', 'min', 'last_update_on'}
local added = {}
for i = 3, #ARGV, G do
  local id, typ, ah, unames, phone, min, ts = ARGV[i], ARGV[i+1], ARGV[i+2], ARGV[i+3], ARGV[i+4], ARGV[i+5], ARGV[i+6]
  local cur = row(id)
  local existed = cur[1]

  -- A min peer never replaces a known full access hash.
  if min == '1' and existed and cur[5] ~= '1' and cur[4] then
    ah, min = cur[4], '0'
  end

  -- Drop index entries that point here for names this peer no longer holds.
  local keep = {}
  for n in string.gmatch(unames, '[^ ]+') do keep[n] = true end
  if cur[2] then
    for n in string.gmatch(cur[2], '[^ ]+') do
      if not keep[n] and index(uidx, KEYS[3], n) == id then
        setindex(uidx, dirtyU, n, false)
      end
    end
  end
  if phone == '' then phone = false end
  if cur[3] and cur[3] ~= phone and index(pidx, KEYS[4], cur[3]) == id then
    setindex(pidx, dirtyP, cur[3], false)
  end

  -- Claim the names and the phone.
  for n in string.gmatch(unames, '[^ ]+') do
    claim(uidx, KEYS[3], dirtyU, n, id, ts)
  end
  if phone then
    claim(pidx, KEYS[4], dirtyP, phone, id, ts)
  end

  -- Replace the row: one HSET for what is present, one HDEL for what was
  -- present and is not any more.
  if ah == '' then ah = false end
  if unames == '' then unames = false end
  if min ~= '1' then min = false end
  local want = {typ, unames, phone, ah, min, ts}
  local set, del = {}, {}
  for k = 1, 6 do
    if want[k] then
      set[#set + 1] = FIELDS[k]
      set[#set + 1] = want[k]
    elseif cur[k] then
      del[#del + 1] = FIELDS[k]
    end
  end
  redis.call('HSET', base .. 'p:' .. id, unpack(set))
  if #del > 0 then
    redis.call('HDEL', base .. 'p:' .. id, unpack(del))
  end
  rows[id] = want
  if not existed then added[#added + 1] = id end
end

-- Flush the index changes and the new ids in bulk.
local function flush(key, cache, dirty)
  local set, del, done = {}, {}, {}
  for _, n in ipairs(dirty) do
    if not done[n] then
      done[n] = true
      if cache[n] then
        set[#set + 1] = n
        set[#set + 1] = cache[n]
      else
        del[#del + 1] = n
      end
    end
  end
  for s = 1, #set, SLICE do
    redis.call('HSET', key, unpack(set, s, math.min(s + SLICE - 1, #set)))
  end
  for s = 1, #del, SLICE do
    redis.call('HDEL', key, unpack(del, s, math.min(s + SLICE - 1, #del)))
  end
end
flush(KEYS[3], uidx, dirtyU)
flush(KEYS[4], pidx, dirtyP)
for s = 1, #added, SLICE do
  redis.call('SADD', KEYS[2], unpack(added, s, math.min(s + SLICE - 1, #added)))
end
return (#ARGV - 2) / G
