-- update_peers.lua: cache a batch of peers atomically (whole-row replace).
--
-- KEYS[1]  session hash          P:{E}:s
-- KEYS[2]  peers hash            P:{E}:p   (id -> encoded row)
-- KEYS[3]  username index hash   P:{E}:u   (username -> id)
-- KEYS[4]  phone index hash      P:{E}:ph  (phone -> id)
-- KEYS[5]  lease                 P:{E}:lease
-- KEYS[6]  applied writes         P:{E}:w   (see guard.lua)
--
-- ARGV[1]  layout version the caller understands
-- ARGV[2]  lease token, or "" without a lease (see guard.lua)
-- ARGV[3]  write id (random per call), or ""
-- ARGV[4..] one per peer: "id|type|access_hash|usernames|phone|min|updated"
--          id          decimal Bot-API id (kept a string: Lua numbers are doubles)
--          type        user | bot | group | channel | supergroup
--          access_hash decimal, or "" for NULL
--          usernames   lower-case [a-z0-9_] names separated by one space, or ""
--          phone       digits, or ""
--          min         "1" for a min peer, else ""
--          updated     last_update_on, unix seconds (decimal; the caller's clock,
--                      or the original time when peers are copied)
--          The caller validates ranges and removes duplicate ids (last wins).
--          One argument per peer: one pattern match validates and splits it.
--
-- A row (the value in KEYS[2]) is the argument without "id|":
-- "type|access_hash|usernames|phone|min|last_update_on". No field can contain '|'.
--
-- Like Hydrogram, a username (or phone) may be listed by several peers; the
-- index points at the holder written most recently (greatest last_update_on,
-- ties to the later write), which is the one lookups return. A peer that
-- drops a name removes the index entry only if the entry points at it.
--
-- The script runs in three phases so that a failure can never leave a partial
-- write (Redis does not roll back a script that fails halfway):
--   1. validate every argument;
--   2. read every row and index entry phase 3 may need, in bulk HMGETs (a key
--      of the wrong type fails here, before any write);
--   3. compute in Lua tables, then write in bulk: one HSET of the changed rows,
--      one HSET and one HDEL per index (in slices of 4000 arguments, below
--      Lua's unpack limit).
--
-- Runs after the guard.lua prelude.
-- Returns: the number of peers written, or -1 when this write id was applied
--          already (a client retry; nothing is written again).
-- Errors (nothing written): BADARG, LEASELOST, LEASEHELD, NOSESSION, LAYOUT, WRONGTYPE (from phase 2).
local SLICE = 4000

-- Phase 1: validate (and split) every argument.
local types = {user = true, bot = true, group = true, channel = true, supergroup = true}
local P = {}
if applied(KEYS[6], ARGV[3]) then -- guard.lua
  return -1
end
for i = 4, #ARGV do
  local id, typ, ah, names, phone, min, ts = string.match(ARGV[i],
    '^(%-?%d+)|(%l+)|(%-?%d*)|([a-z0-9_ ]*)|(%d*)|(1?)|(%d+)$')
  if not id or #id > 20 or not types[typ] or #ah > 20 or #ts > 15 or ah == '-' then
    return redis.error_reply('BADARG peer #' .. (i - 3) .. ' is malformed')
  end
  P[#P + 1] = {id, typ, ah, names, phone, min, ts, ARGV[i]}
end

local refused = check_lease(KEYS[5], ARGV[2]) or check_session(KEYS[1], ARGV[1]) -- guard.lua
if refused then
  return refused
end

-- Phase 2: read.
-- rows[id] = {type, usernames, phone, access_hash, min, ts} with false for absent
-- fields, or false for an unknown peer.
local function each(names, fn) -- calls fn for every name in a space-separated list
  if names == '' then return end
  if not string.find(names, ' ', 1, true) then return fn(names) end
  for n in string.gmatch(names, '[^ ]+') do fn(n) end
end
local function f(x) if x == '' then return false end return x end
local function decode(v)
  if not v then return false end
  local t, h, u, p, m, ts = string.match(v, '^([^|]*)|([^|]*)|([^|]*)|([^|]*)|([^|]*)|([^|]*)$')
  if not t then return false end
  return {t, f(u), f(p), f(h), f(m), f(ts)}
end
local rows, uidx, pidx = {}, {}, {}
-- load fills cache[name] for every name not cached yet, one HMGET per slice.
local function load(cache, key, names, conv)
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
    for k = s, e do
      local v = vals[k - s + 1]
      if conv then v = conv(v) end
      cache[want[k]] = v
    end
  end
end
local ids = {}
for k = 1, #P do ids[k] = P[k][1] end
load(rows, KEYS[2], ids, decode)
local names, phones = {}, {}
local function addname(n) names[#names + 1] = n end
for k = 1, #P do
  local p = P[k]
  local cur = rows[p[1]]
  each(p[4], addname)
  if p[5] ~= '' then phones[#phones + 1] = p[5] end
  if cur then
    if cur[2] then each(cur[2], addname) end
    if cur[3] then phones[#phones + 1] = cur[3] end
  end
end
load(uidx, KEYS[3], names)
load(pidx, KEYS[4], phones)
-- The current holders of the names and phones this batch claims: their times decide.
local holders = {}
for _, n in ipairs(names) do
  local h = uidx[n]
  if h then holders[#holders + 1] = h end
end
for _, p in ipairs(phones) do
  local h = pidx[p]
  if h then holders[#holders + 1] = h end
end
load(rows, KEYS[2], holders, decode)

-- Phase 3: compute, then write in bulk.
local dirtyU, dirtyP, dirtyR = {}, {}, {}
local function setindex(cache, dirty, name, v)
  if cache[name] ~= v then
    cache[name] = v
    dirty[#dirty + 1] = name
  end
end
-- claim points name at id unless its holder was written later than ts.
local function claim(cache, dirty, name, id, ts)
  local h = cache[name]
  if h == id then return end
  if h then
    local hr = rows[h]
    if hr and hr[6] and tonumber(hr[6]) > tonumber(ts) then return end
  end
  setindex(cache, dirty, name, id)
end
for k = 1, #P do
  local id, typ, ah, unames, phone, min, ts, arg = unpack(P[k])
  local cur = rows[id]

  -- A min peer never replaces a known full access hash.
  local row = string.sub(arg, #id + 2)
  if min == '1' and cur and cur[5] ~= '1' and cur[4] then
    ah, min = cur[4], ''
    row = typ .. '|' .. ah .. '|' .. unames .. '|' .. phone .. '||' .. ts
  end

  -- Drop index entries that point here for names this peer no longer holds.
  if cur and cur[2] and cur[2] ~= unames then
    local keep = {}
    each(unames, function(n) keep[n] = true end)
    each(cur[2], function(n)
      if not keep[n] and uidx[n] == id then
        setindex(uidx, dirtyU, n, false)
      end
    end)
  end
  if cur and cur[3] and cur[3] ~= phone and pidx[cur[3]] == id then
    setindex(pidx, dirtyP, cur[3], false)
  end

  -- Claim the names and the phone.
  if unames ~= '' and not string.find(unames, ' ', 1, true) then
    claim(uidx, dirtyU, unames, id, ts)
  elseif unames ~= '' then
    for n in string.gmatch(unames, '[^ ]+') do claim(uidx, dirtyU, n, id, ts) end
  end
  if phone ~= '' then
    claim(pidx, dirtyP, phone, id, ts)
  end

  rows[id] = {typ, unames ~= '' and unames, phone ~= '' and phone, ah ~= '' and ah, min ~= '' and min, ts, row}
  dirtyR[#dirtyR + 1] = id
end

-- flush writes the dirty entries of a cache: HSET for values, HDEL for false.
local function flush(key, cache, dirty, enc)
  local set, del, done = {}, {}, {}
  for _, n in ipairs(dirty) do
    if not done[n] then
      done[n] = true
      local v = cache[n]
      if v then
        set[#set + 1] = n
        set[#set + 1] = enc and enc(v) or v
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
local function encode(r) return r[7] end -- the row text, kept by phase 3
flush(KEYS[2], rows, dirtyR, encode)
flush(KEYS[3], uidx, dirtyU)
flush(KEYS[4], pidx, dirtyP)
record_applied(KEYS[6], ARGV[3])
return #P
