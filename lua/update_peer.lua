-- update_peer.lua: update_peers.lua for exactly one peer, written straight
-- (no closures, few tables, one pattern per row): the write a bot makes
-- most. The rules are update_peers.lua's, whose header explains them;
-- TestSinglePeerScriptMatchesBatch runs random single-peer writes through
-- both scripts and requires equal replies and equal keys after each.
-- (callgrind, one changed peer with a username and a phone: 155k
-- instructions per call against update_peers.lua's 213k; BENCHMARKS.md.)
--
-- KEYS[1..6] session, peers, username index, phone index, lease, applied
--            writes: as update_peers.lua
-- ARGV[1]    layout version the caller understands
-- ARGV[2]    lease token, or "" without a lease (guard.lua)
-- ARGV[3]    write id, or ""
-- ARGV[4]    the one peer, "id|type|access_hash|usernames|phone|min|updated"
--            (update_peers.lua); a second peer argument is BADARG
--
-- Runs after the guard.lua prelude.
-- Returns: as update_peers.lua: {1, ...} with "m<id>|<access_hash>",
--          "u<name>" and "p<phone>" entries, or {-1} for a retry of an
--          applied write.
-- Errors (nothing written): BADARG, LEASELOST, LEASEHELD, NOSESSION, LAYOUT,
--          WRONGTYPE.
local match, gmatch = string.match, string.gmatch
local a = ARGV[4]
local id, typ, ah, unames, phone, min, tss = match(a,
  '^(%-?%d+)|(%l+)|(%-?%d*)|([a-z0-9_ ]*)|(%d*)|(1?)|(%d+)$')
if not id or #id > 20 or #ah > 20 or #tss > 15 or ah == '-' or #ARGV ~= 4 or not (typ == 'user' or
    typ == 'bot' or typ == 'group' or typ == 'channel' or typ == 'supergroup') then
  return redis.error_reply('BADARG peer #1 is malformed')
end
if applied(KEYS[6], ARGV[3]) then -- guard.lua
  return {-1}
end
local refused = check_lease(KEYS[5], ARGV[2]) or check_session(KEYS[1], ARGV[1]) -- guard.lua
if refused then
  return refused
end

-- Read: the old row, the index entries of the new and old names and phones,
-- and the rows of their holders other than this peer.
local t = tonumber(tss)
local old = redis.call('HGET', KEYS[2], id)
local oh, ou, oph, om = '', '', '', ''
if old then
  local _, h, u, ph, m = match(old, '^([^|]*)|([^|]*)|([^|]*)|([^|]*)|([^|]*)|')
  if h then oh, ou, oph, om = h, u, ph, m end
end
-- names[1..nnew] are the new names in order (duplicates kept, as the batch
-- script reports them), then the old names; uidx[name] their index entries.
local names, nnew, uidx = {}, 0, {}
if unames ~= '' then
  for n in gmatch(unames, '[^ ]+') do nnew = nnew + 1; names[nnew] = n; uidx[n] = false end
end
local want, nw = {}, 0
for k = 1, nnew do
  local n = names[k]
  if uidx[n] == false then uidx[n] = 0; nw = nw + 1; want[nw] = n end
end
if old and ou ~= '' and ou ~= unames then
  for n in gmatch(ou, '[^ ]+') do
    if uidx[n] == nil then uidx[n] = 0; nw = nw + 1; want[nw] = n end
  end
end
local holders, nh = {}, 0
if nw > 0 then
  local v = redis.call('HMGET', KEYS[3], unpack(want, 1, nw))
  for k = 1, nw do
    local h = v[k]
    uidx[want[k]] = h
    if h and h ~= id then nh = nh + 1; holders[nh] = h end
  end
end
local pidx, oldPhone = {}, old and oph ~= '' and oph ~= phone and oph or nil
if phone ~= '' or oldPhone then
  local v
  if phone ~= '' and oldPhone then
    v = redis.call('HMGET', KEYS[4], phone, oldPhone)
    pidx[oldPhone] = v[2]
  elseif phone ~= '' then
    v = {redis.call('HGET', KEYS[4], phone)}
  else
    v = {false}
    pidx[oldPhone] = redis.call('HGET', KEYS[4], oldPhone)
  end
  if phone ~= '' then
    local h = v[1]
    pidx[phone] = h
    if h and h ~= id then nh = nh + 1; holders[nh] = h end
  end
end
-- ts[holder] = its last_update_on (nil: no row, or none that parses).
local ts = {}
if nh > 0 then
  local v = redis.call('HMGET', KEYS[2], unpack(holders, 1, nh))
  for k = 1, nh do
    if v[k] then ts[holders[k]] = tonumber(match(v[k], '^[^|]*|[^|]*|[^|]*|[^|]*|[^|]*|(%d*)$')) end
  end
end

-- Compute, then write.
local row, out = string.sub(a, #id + 2), {1}
if old and min == '1' and om ~= '1' and oh ~= '' then
  -- A min peer never replaces a known full access hash.
  row = typ .. '|' .. oh .. '|' .. unames .. '|' .. phone .. '||' .. tss
  out[2] = 'm' .. id .. '|' .. oh
end
local usets, udels, psets, pdels = {}, {}, {}, {}
-- Drop index entries that point here for names this peer no longer holds.
if old and ou ~= '' and ou ~= unames then
  local keep = {}
  for k = 1, nnew do keep[names[k]] = true end
  for n in gmatch(ou, '[^ ]+') do
    if not keep[n] and uidx[n] == id then uidx[n] = false; udels[#udels + 1] = n end
  end
end
if oldPhone and pidx[oldPhone] == id then
  pidx[oldPhone] = false
  pdels[1] = oldPhone
end
-- Claim the names and the phone unless their holder was written later.
for k = 1, nnew do
  local n = names[k]
  local h = uidx[n]
  if h ~= id and not (h and ts[h] and ts[h] > t) then
    uidx[n] = id
    usets[#usets + 1] = n
    usets[#usets + 1] = id
  end
end
if phone ~= '' then
  local h = pidx[phone]
  if h ~= id and not (h and ts[h] and ts[h] > t) then
    pidx[phone] = id
    psets[1], psets[2] = phone, id
  end
end
redis.call('HSET', KEYS[2], id, row)
if #usets > 0 then redis.call('HSET', KEYS[3], unpack(usets)) end
if #udels > 0 then redis.call('HDEL', KEYS[3], unpack(udels)) end
if #psets > 0 then redis.call('HSET', KEYS[4], unpack(psets)) end
if #pdels > 0 then redis.call('HDEL', KEYS[4], unpack(pdels)) end
record_applied(KEYS[6], ARGV[3]) -- guard.lua

-- What the argument did not get.
for k = 1, nnew do
  if uidx[names[k]] ~= id then out[#out + 1] = 'u' .. names[k] end
end
if phone ~= '' and pidx[phone] ~= id then out[#out + 1] = 'p' .. phone end
return out
