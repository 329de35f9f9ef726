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
--   3. compute in Lua tables, then write in bulk: one HSET of the rows, one
--      HSET and one HDEL per index (in slices of 4000 arguments, below Lua's
--      unpack limit).
-- It is written for speed (INFO commandstats measures it; BENCHMARKS.md):
-- no closures or tables per peer beyond one, old rows decoded only when
-- present, a single username handled without gmatch.
--
-- Runs after the guard.lua prelude.
-- Returns: {n, ...}: n, the number of peers written, then one string for each
--          way the stored result differs from the arguments, so that an
--          owner's cache can hold exactly what Redis holds:
--            "u<name>"   a written peer lists this username but the index does
--                        not give it to that peer (a holder written later keeps
--                        it, or a later peer of this batch took it)
--            "p<phone>"  the same for a phone number
--            "m<id>|<access_hash>"  a min peer whose known full access hash was
--                        kept: the stored row is the argument's with this access
--                        hash and min cleared
--          or {-1} when this write id was applied already (a client retry;
--          nothing is written again).
-- Errors (nothing written): BADARG, LEASELOST, LEASEHELD, NOSESSION, LAYOUT, WRONGTYPE (from phase 2).
local SLICE = 4000
local match, find, sub, gmatch = string.match, string.find, string.sub, string.gmatch

-- Phase 1: validate (and split) every argument.
if applied(KEYS[6], ARGV[3]) then -- guard.lua
  return {-1}
end
local types = {user = true, bot = true, group = true, channel = true, supergroup = true}
local P, np = {}, 0
for i = 4, #ARGV do
  local a = ARGV[i]
  local id, typ, ah, names, phone, min, ts = match(a,
    '^(%-?%d+)|(%l+)|(%-?%d*)|([a-z0-9_ ]*)|(%d*)|(1?)|(%d+)$')
  if not id or #id > 20 or not types[typ] or #ah > 20 or #ts > 15 or ah == '-' then
    return redis.error_reply('BADARG peer #' .. (i - 3) .. ' is malformed')
  end
  np = np + 1
  P[np] = {id, typ, ah, names, phone, min, ts, a}
end

local refused = check_lease(KEYS[5], ARGV[2]) or check_session(KEYS[1], ARGV[1]) -- guard.lua
if refused then
  return refused
end

-- Phase 2: read.
-- old[id] = the stored row of a batch peer or an index holder (false: none);
-- uidx[name], pidx[phone] = the index entries (false: none).
local old, uidx, pidx = {}, {}, {}
-- load fills cache[name] for the names in want (unique, not yet loaded),
-- one HMGET per slice.
local function load(cache, key, want)
  for s = 1, #want, SLICE do
    local e = math.min(s + SLICE - 1, #want)
    local vals = redis.call('HMGET', key, unpack(want, s, e))
    for k = s, e do
      cache[want[k]] = vals[k - s + 1]
    end
  end
end
local want = {}
for k = 1, np do want[k] = P[k][1] end
load(old, KEYS[2], want)
-- The names and phones to read: the batch's, and those the old rows held.
local wantU, wantP, nu, nph = {}, {}, 0, 0
local function addU(n)
  if uidx[n] == nil then uidx[n] = false; nu = nu + 1; wantU[nu] = n end
end
local function addP(p)
  if pidx[p] == nil then pidx[p] = false; nph = nph + 1; wantP[nph] = p end
end
local function addNames(names)
  if names == '' then return end
  if not find(names, ' ', 1, true) then return addU(names) end
  for n in gmatch(names, '[^ ]+') do addU(n) end
end
-- dec[id] = {usernames, phone, access_hash, min} of an old row, decoded once.
local dec = {}
for k = 1, np do
  local p = P[k]
  addNames(p[4])
  if p[5] ~= '' then addP(p[5]) end
  local v = old[p[1]]
  if v then
    local _, h, u, ph, m = match(v, '^([^|]*)|([^|]*)|([^|]*)|([^|]*)|([^|]*)|')
    if not h then h, u, ph, m = '', '', '', '' end
    dec[p[1]] = {u, ph, h, m}
    addNames(u)
    if ph ~= '' then addP(ph) end
  end
end
load(uidx, KEYS[3], wantU)
load(pidx, KEYS[4], wantP)
-- The rows of the current holders that are not loaded yet: their times decide.
want = {}
local function addHolder(h)
  if h and old[h] == nil then old[h] = false; want[#want + 1] = h end
end
for k = 1, nu do addHolder(uidx[wantU[k]]) end
for k = 1, nph do addHolder(pidx[wantP[k]]) end
load(old, KEYS[2], want)
-- ts[id] = last_update_on of a loaded row (a number), updated as phase 3
-- writes. (An anchored pattern: an unanchored one is tried at every offset.)
local ts = {}
for id, v in pairs(old) do
  if v then ts[id] = tonumber(match(v, '^[^|]*|[^|]*|[^|]*|[^|]*|[^|]*|(%d*)$')) end
end

-- Phase 3: compute, then write in bulk.
local dirtyU, dirtyP = {}, {}
-- claim points name at id unless its holder was written later than t.
local function claim(index, dirty, name, id, t)
  local h = index[name]
  if h == id then return end
  if h then
    local ht = ts[h]
    if ht and ht > t then return end
  end
  index[name] = id
  dirty[#dirty + 1] = name
end
local function drop(index, dirty, name, id)
  if index[name] == id then
    index[name] = false
    dirty[#dirty + 1] = name
  end
end
local rowsOut, out = {}, {0}
for k = 1, np do
  local p = P[k]
  local id, typ, ah, unames, phone, min, t, a = p[1], p[2], p[3], p[4], p[5], p[6], tonumber(p[7]), p[8]
  local row = sub(a, #id + 2)
  local cur = dec[id]
  if cur then
    -- A min peer never replaces a known full access hash.
    if min == '1' and cur[4] ~= '1' and cur[3] ~= '' then
      ah = cur[3]
      row = typ .. '|' .. ah .. '|' .. unames .. '|' .. phone .. '||' .. p[7]
      out[#out + 1] = 'm' .. id .. '|' .. ah
    end
    -- Drop index entries that point here for names this peer no longer holds.
    if cur[1] ~= unames and cur[1] ~= '' then
      local keep = {}
      for n in gmatch(unames, '[^ ]+') do keep[n] = true end
      for n in gmatch(cur[1], '[^ ]+') do
        if not keep[n] then drop(uidx, dirtyU, n, id) end
      end
    end
    if cur[2] ~= phone and cur[2] ~= '' then
      drop(pidx, dirtyP, cur[2], id)
    end
  end
  ts[id] = t
  -- Claim the names and the phone.
  if unames ~= '' then
    if not find(unames, ' ', 1, true) then
      claim(uidx, dirtyU, unames, id, t)
    else
      for n in gmatch(unames, '[^ ]+') do claim(uidx, dirtyU, n, id, t) end
    end
  end
  if phone ~= '' then
    claim(pidx, dirtyP, phone, id, t)
  end
  rowsOut[2 * k - 1] = id
  rowsOut[2 * k] = row
end

-- write sets a list of field/value pairs, and deletes a list of fields.
local function write(key, set, del)
  for s = 1, #set, SLICE do
    redis.call('HSET', key, unpack(set, s, math.min(s + SLICE - 1, #set)))
  end
  for s = 1, #del, SLICE do
    redis.call('HDEL', key, unpack(del, s, math.min(s + SLICE - 1, #del)))
  end
end
-- flush writes the dirty entries of an index: HSET for ids, HDEL for false.
local function flush(key, index, dirty)
  local set, del, done = {}, {}, {}
  for _, n in ipairs(dirty) do
    if not done[n] then
      done[n] = true
      local v = index[n]
      if v then
        set[#set + 1] = n
        set[#set + 1] = v
      else
        del[#del + 1] = n
      end
    end
  end
  write(key, set, del)
end
write(KEYS[2], rowsOut, {})
flush(KEYS[3], uidx, dirtyU)
flush(KEYS[4], pidx, dirtyP)
record_applied(KEYS[6], ARGV[3])

-- What the caller's arguments did not get.
for k = 1, np do
  local p = P[k]
  local id, unames, phone = p[1], p[4], p[5]
  if unames ~= '' then
    if not find(unames, ' ', 1, true) then
      if uidx[unames] ~= id then out[#out + 1] = 'u' .. unames end
    else
      for n in gmatch(unames, '[^ ]+') do
        if uidx[n] ~= id then out[#out + 1] = 'u' .. n end
      end
    end
  end
  if phone ~= '' and pidx[phone] ~= id then out[#out + 1] = 'p' .. phone end
end
out[1] = np
return out
