--[[
Folds one batch of ONE ticker into its buckets, atomically.

The caller has already removed in-batch duplicates, grouped the items by bucket and
pre-aggregated each group (the domain's foldAggregate). This script:
  1. returns {'dup', position...} and changes nothing when any item's fingerprint is in a
     dedupe slice (the caller drops those items, re-aggregates and calls again);
  2. returns {'load', bucketIndex...} and changes nothing when a bucket is neither loaded
     nor known-empty (the needs-load protocol);
  3. otherwise adds the fingerprints to the current slice, merges each partial aggregate into its bucket by
     the merge law, bumps rev, stamps last_updated from the server clock, marks the bucket
     dirty and returns {'ok', {bucketIndex, field...}...} with the new states.

KEYS: current seen slice, dirty, bucket hashes (nb), series indexes (ni), earlier seen slices (ns)
ARGV: currentSliceExpiresAt (epoch ms), seq|'', epoch|'', nb, ni, nIds, ns,
      per index: ttlMs, trimBefore
      per bucket: member, ttlMs, indexPos, start, 14 aggregate fields (see bucket-codec.ts)
      item fingerprints (8 bytes each, shared/timeseries/dedupe.ts), then maxSources (the
      domain's MAX_SOURCES: a bucket keeps the first maxSources sources)
]]

local FIELDS = { 'o', 'h', 'l', 'c', 'n', 's', 'pos', 'neu', 'neg', 'src', 'fts', 'fid', 'lts', 'lid', 'rev', 'upd', 'seq', 'ep' }
local PER_BUCKET = 18
local CHUNK = 1000

local seenKey, dirtyKey = KEYS[1], KEYS[2]
local sliceExpiresAt = ARGV[1]
local seq = tonumber(ARGV[2])
local epoch = ARGV[3]
local nb, ni, nIds, ns = tonumber(ARGV[4]), tonumber(ARGV[5]), tonumber(ARGV[6]), tonumber(ARGV[7])
local ARGS_HEAD = 7
local bucketBase = ARGS_HEAD + 2 * ni
local idBase = bucketBase + PER_BUCKET * nb
local maxSources = tonumber(ARGV[idBase + nIds + 1])

local function fmt (x)
  return string.format('%.17g', x)
end

-- Byte-wise order (= Unicode code point order for UTF-8); Lua's `<` on strings uses strcoll.
local function compareBytes (a, b)
  if a == b then return 0 end
  local la, lb = #a, #b
  local n = la < lb and la or lb
  for i = 1, n do
    local x, y = string.byte(a, i), string.byte(b, i)
    if x ~= y then return x < y and -1 or 1 end
  end
  return la < lb and -1 or 1
end

local function compareOrder (ts1, id1, ts2, id2)
  if ts1 ~= ts2 then return ts1 < ts2 and -1 or 1 end
  return compareBytes(id1, id2)
end

-- Math.max/Math.min semantics for signed zeros, so both adapters agree bit for bit.
local function max (a, b)
  if a > b then return a elseif b > a then return b end
  -- Equal: only zeros can differ (0 vs -0); 0 + -0 is 0, as Math.max(0, -0) is.
  if a == 0 then return a + b end
  return a
end

local function min (a, b)
  if a < b then return a elseif b < a then return b end
  -- Equal: only zeros can differ; -((-0) + (-(-0))) is -0, as Math.min(0, -0) is.
  if a == 0 then return -((-a) + (-b)) end
  return a
end

local function bytesLess (a, b)
  return compareBytes(a, b) < 0
end

local function unionSources (a, b)
  if a == b then return a end
  local set, list = {}, {}
  for _, s in ipairs(cjson.decode(a)) do
    if not set[s] then set[s] = true; list[#list + 1] = s end
  end
  local grew = false
  for _, s in ipairs(cjson.decode(b)) do
    if not set[s] then set[s] = true; list[#list + 1] = s; grew = true end
  end
  if not grew then return a end
  table.sort(list, bytesLess)
  for i = #list, maxSources + 1, -1 do list[i] = nil end
  return cjson.encode(list)
end

local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)

local slices = { seenKey }
for s = 1, ns do slices[#slices + 1] = KEYS[2 + nb + ni + s] end
local seenIds = {}
for i = 1, nIds, CHUNK do
  local last = math.min(i + CHUNK - 1, nIds)
  local chunk = {}
  for j = i, last do chunk[#chunk + 1] = ARGV[idBase + j] end
  local dup = {}
  for _, slice in ipairs(slices) do
    local found = redis.call('SMISMEMBER', slice, unpack(chunk))
    for j = 1, #chunk do
      if found[j] == 1 then dup[j] = true end
    end
  end
  for j = 1, #chunk do
    if dup[j] then seenIds[#seenIds + 1] = i + j - 1 end
  end
end
if #seenIds > 0 then
  table.insert(seenIds, 1, 'dup')
  return seenIds
end

local existing = {}
local missing = {}
for b = 1, nb do
  local values = redis.call('HMGET', KEYS[2 + b], unpack(FIELDS))
  if not values[15] then missing[#missing + 1] = tostring(b) end
  existing[b] = values
end
if #missing > 0 then
  table.insert(missing, 1, 'load')
  return missing
end

for i = 1, nIds, CHUNK do
  local last = math.min(i + CHUNK - 1, nIds)
  local args = {}
  for j = i, last do args[#args + 1] = ARGV[idBase + j] end
  redis.call('SADD', seenKey, unpack(args))
end
-- The slice goes whole once its last fingerprint is past the window.
redis.call('PEXPIREAT', seenKey, sliceExpiresAt)

local changed = { 'ok' }
local indexTouched = {}
for b = 1, nb do
  local e = existing[b]
  local base = bucketBase + PER_BUCKET * (b - 1)
  local eSeq = tonumber(e[17])
  -- Sequences compare only within one journal epoch (JournalMark in shared/timeseries/bucket.ts).
  -- A bucket without an epoch was written before journals had one (UNNAMED_EPOCH, '').
  local sameEpoch = seq ~= nil and (e[18] or '') == epoch
  if not (sameEpoch and eSeq and eSeq >= seq) then
    local key = KEYS[2 + b]
    local member, ttlMs, indexPos, start = ARGV[base + 1], ARGV[base + 2], tonumber(ARGV[base + 3]), ARGV[base + 4]
    local d = base + 4
    local o, h, l, c = tonumber(ARGV[d + 1]), tonumber(ARGV[d + 2]), tonumber(ARGV[d + 3]), tonumber(ARGV[d + 4])
    local n, s = tonumber(ARGV[d + 5]), tonumber(ARGV[d + 6])
    local pos, neu, neg = tonumber(ARGV[d + 7]), tonumber(ARGV[d + 8]), tonumber(ARGV[d + 9])
    local src = ARGV[d + 10]
    local fts, fid, lts, lid = tonumber(ARGV[d + 11]), ARGV[d + 12], tonumber(ARGV[d + 13]), ARGV[d + 14]
    local isNew = not e[5]
    if not isNew then
      local efts, eltsv = tonumber(e[11]), tonumber(e[13])
      if compareOrder(efts, e[12], fts, fid) <= 0 then o, fts, fid = tonumber(e[1]), efts, e[12] end
      if compareOrder(eltsv, e[14], lts, lid) >= 0 then c, lts, lid = tonumber(e[4]), eltsv, e[14] end
      h = max(tonumber(e[2]), h)
      l = min(tonumber(e[3]), l)
      n = tonumber(e[5]) + n
      s = tonumber(e[6]) + s
      pos = tonumber(e[7]) + pos
      neu = tonumber(e[8]) + neu
      neg = tonumber(e[9]) + neg
      src = unionSources(e[10], src)
    end
    local rev = tonumber(e[15]) + 1
    local upd = math.max(now, tonumber(e[16]) or 0)
    local newSeq, newEpoch = eSeq or -1, e[18] or ''
    if seq then
      newSeq = sameEpoch and math.max(seq, eSeq or -1) or seq
      newEpoch = epoch
    end
    local seqText = newSeq >= 0 and fmt(newSeq) or ''
    local values = {
      fmt(o), fmt(h), fmt(l), fmt(c), fmt(n), fmt(s), fmt(pos), fmt(neu), fmt(neg), src,
      fmt(fts), fid, fmt(lts), lid, fmt(rev), fmt(upd), seqText, newEpoch
    }
    local hset = {}
    for f = 1, 16 do
      hset[#hset + 1] = FIELDS[f]
      hset[#hset + 1] = values[f]
    end
    if seqText ~= '' then
      hset[#hset + 1] = 'seq'
      hset[#hset + 1] = seqText
    end
    if newEpoch ~= '' then
      hset[#hset + 1] = 'ep'
      hset[#hset + 1] = newEpoch
    elseif e[18] then
      redis.call('HDEL', key, 'ep')
    end
    redis.call('HSET', key, unpack(hset))
    redis.call('ZADD', dirtyKey, 'NX', now, member)
    if isNew then
      -- An existing bucket already carries its expiry (end + retention + grace, fixed).
      redis.call('PEXPIRE', key, ttlMs)
      redis.call('ZADD', KEYS[2 + nb + indexPos], start, start)
      indexTouched[indexPos] = true
    end
    table.insert(values, 1, tostring(b))
    changed[#changed + 1] = values
  end
end

for i = 1, ni do
  if indexTouched[i] then
    local key = KEYS[2 + nb + i]
    redis.call('PEXPIRE', key, ARGV[ARGS_HEAD + 2 * i - 1])
    redis.call('ZREMRANGEBYSCORE', key, '-inf', '(' .. ARGV[ARGS_HEAD + 2 * i])
  end
end

return changed
