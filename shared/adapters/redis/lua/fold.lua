--[[
Folds one batch of ONE ticker into its buckets, atomically.

The caller has already removed in-batch duplicates, grouped the items by bucket and
pre-aggregated each group (the domain's foldAggregate). This script:
  1. returns {'dup', position...} and changes nothing when any item's fingerprint is in a
     dedupe slice (the caller drops those items, re-aggregates and calls again);
  2. returns {'term', run_id} when the ticker's position does not belong to this Redis
     server's run (a restart, a promoted replica: writes may have been lost or rolled
     back) or its count is spent, unless the caller offers a term allocated for this very
     run that is above the one stored; with such an offer the ticker starts counting in it
     (see shared/timeseries/revision.ts);
  3. returns {'load', bucketIndex...} and changes nothing when a bucket is neither loaded
     nor known-empty, or holds a state of an earlier term that was not reconciled with the
     archive yet (the needs-load protocol; lua/seed.lua reconciles);
  4. otherwise adds the fingerprints to the current slice, merges each partial aggregate into its bucket by
     the merge law, counts one change of the ticker and gives every changed bucket that
     position as its rev, stamps last_updated from the server clock, marks the bucket
     dirty and returns {'ok', gen, {bucketIndex, field...}...} with the new states; gen is
     the ticker's new dirty-gen when its dirty set was empty before (the caller then indexes
     the ticker as dirty), else 0;
  5. and, in the same atomic step, publishes each changed bucket on its series channel
     (PUBLISH, or SPUBLISH on a Redis Cluster: the channel carries the ticker's hash tag, so
     it is on this script's slot), so every channel carries its states in position order
     and no fold is committed without being published. The message is the wire format of
     bus-message.ts: a JSON array of strings, the event kind, acceptedAt, the bucket's
     ticker, resolution and start, then the hash fields exactly as stored — cjson never
     formats a number here (it keeps 14 significant digits) — then '1' on the last message
     of each channel (no other state of that series at this rev follows), else ''.

Journal marks (seq, ep) belong to the embedded journal, which runs with the memory hot
state only: a bucket keeps whatever seq/ep it was seeded with, untouched.

KEYS: current seen slice, dirty, bucket hashes (nb), series indexes (ni), earlier seen slices (ns), dirty-gen
      (expires no sooner than any bucket this script wrote), position (hash: run, term, count; expires no sooner than any bucket this script wrote)
ARGV: currentSliceExpiresAt (epoch ms), nb, ni, nIds, ns,
      per index: ttlMs, trimBefore
      per bucket: member, ttlMs, indexPos, start, 15 aggregate fields (see bucket-codec.ts)
      item fingerprints (8 bytes each, shared/timeseries/dedupe.ts), then maxSources (the
      domain's MAX_SOURCES: a bucket keeps the first maxSources sources), then the offered
      run and term ('' when none), then the ticker, the publish command ('PUBLISH',
      'SPUBLISH', or '' to publish nothing), the ticker's channel prefix (the resolution
      completes it) and acceptedAt ('' when none), then the milliseconds a fault test
      skews this server's clock by (0 in production: fault points are refused there)
]]

local FIELDS = { 'o', 'h', 'l', 'c', 'n', 's', 'pos', 'neu', 'neg', 'src', 'fts', 'fid', 'lts', 'lid', 'rev', 'upd', 'seq', 'ep', 'trunc' }
local PER_BUCKET = 19
local CHUNK = 1000

local seenKey, dirtyKey = KEYS[1], KEYS[2]
local sliceExpiresAt = ARGV[1]
local nb, ni, nIds, ns = tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5])
local ARGS_HEAD = 5
local bucketBase = ARGS_HEAD + 2 * ni
local idBase = bucketBase + PER_BUCKET * nb
local maxSources = tonumber(ARGV[idBase + nIds + 1])
local offeredRun, offeredTerm = ARGV[idBase + nIds + 2], tonumber(ARGV[idBase + nIds + 3])
local ticker, publishCommand = ARGV[idBase + nIds + 4], ARGV[idBase + nIds + 5]
local channelPrefix, acceptedAt = ARGV[idBase + nIds + 6], ARGV[idBase + nIds + 7]
local clockSkew = tonumber(ARGV[idBase + nIds + 8]) or 0
local genKey, positionKey = KEYS[2 + nb + ni + ns + 1], KEYS[2 + nb + ni + ns + 2]
local TERM_SPAN = 268435456

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

-- The union of two sorted source lists cut to maxSources, and whether the cut left any out.
local function unionSources (a, b)
  if a == b then return a, false end
  local set, list = {}, {}
  for _, s in ipairs(cjson.decode(a)) do
    if not set[s] then set[s] = true; list[#list + 1] = s end
  end
  local grew = false
  for _, s in ipairs(cjson.decode(b)) do
    if not set[s] then set[s] = true; list[#list + 1] = s; grew = true end
  end
  if not grew then return a, false end
  table.sort(list, bytesLess)
  local cut = #list > maxSources
  for i = #list, maxSources + 1, -1 do list[i] = nil end
  return cjson.encode(list), cut
end

local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000) + clockSkew

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

-- The position and the dirty-gen outlive every bucket of the ticker and go some time after the
-- last of them: their expiry is pushed to the latest expiry of the buckets this fold writes
-- (each one's ttlMs from now is at least what its key has left), never pulled in. So a ticker
-- that stops getting items leaves no key behind, and a dirty-gen never restarts while the
-- dirty-tickers index may still hold the ticker at an older gen.
local keepMs = 0
for b = 1, nb do keepMs = math.max(keepMs, tonumber(ARGV[bucketBase + PER_BUCKET * (b - 1) + 2])) end
local function outliveBuckets (key)
  if redis.call('PTTL', key) < keepMs then redis.call('PEXPIRE', key, keepMs) end
end

local run = string.match(redis.call('INFO', 'server'), 'run_id:(%w+)')
local held = redis.call('HMGET', positionKey, 'run', 'term', 'count')
local term, count = tonumber(held[2]), tonumber(held[3])
if held[1] ~= run or term == nil or count == nil or count >= TERM_SPAN - 1 then
  if offeredRun ~= run or offeredTerm == nil or (term ~= nil and offeredTerm <= term) then
    return { 'term', run }
  end
  term, count = offeredTerm, 0
  redis.call('HSET', positionKey, 'run', run, 'term', fmt(term), 'count', '0')
  outliveBuckets(positionKey)
end
local termFloor = term * TERM_SPAN

local existing = {}
local missing = {}
for b = 1, nb do
  local values = redis.call('HMGET', KEYS[2 + b], unpack(FIELDS))
  -- Absent, or a state of an earlier term: a rolled-back hot state may hold less than the archive.
  if not values[15] or tonumber(values[15]) < termFloor then missing[#missing + 1] = tostring(b) end
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

count = count + 1
redis.call('HSET', positionKey, 'count', fmt(count))
outliveBuckets(positionKey)
local rev = termFloor + count

local wasClean = redis.call('EXISTS', dirtyKey) == 0
local changed = { 'ok', 0 }
local messages = {}
local indexTouched = {}
for b = 1, nb do
  local e = existing[b]
  local base = bucketBase + PER_BUCKET * (b - 1)
  do
    local key = KEYS[2 + b]
    local member, ttlMs, indexPos, start = ARGV[base + 1], ARGV[base + 2], tonumber(ARGV[base + 3]), ARGV[base + 4]
    local d = base + 4
    local o, h, l, c = tonumber(ARGV[d + 1]), tonumber(ARGV[d + 2]), tonumber(ARGV[d + 3]), tonumber(ARGV[d + 4])
    local n, s = tonumber(ARGV[d + 5]), tonumber(ARGV[d + 6])
    local pos, neu, neg = tonumber(ARGV[d + 7]), tonumber(ARGV[d + 8]), tonumber(ARGV[d + 9])
    local src = ARGV[d + 10]
    local fts, fid, lts, lid = tonumber(ARGV[d + 11]), ARGV[d + 12], tonumber(ARGV[d + 13]), ARGV[d + 14]
    local trunc = ARGV[d + 15] == '1'
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
      local cut
      src, cut = unionSources(e[10], src)
      trunc = trunc or cut or e[19] == '1'
    end
    local upd = math.max(now, tonumber(e[16]) or 0)
    local values = {
      fmt(o), fmt(h), fmt(l), fmt(c), fmt(n), fmt(s), fmt(pos), fmt(neu), fmt(neg), src,
      fmt(fts), fid, fmt(lts), lid, fmt(rev), fmt(upd), e[17] or '', e[18] or '', trunc and '1' or ''
    }
    local hset = {}
    for f = 1, 16 do
      hset[#hset + 1] = FIELDS[f]
      hset[#hset + 1] = values[f]
    end
    if trunc then
      hset[#hset + 1] = 'trunc'
      hset[#hset + 1] = '1'
    end
    redis.call('HSET', key, unpack(hset))
    redis.call('ZADD', dirtyKey, 'NX', now, member)
    if isNew then
      -- An existing bucket already carries its expiry (end + retention + grace, fixed).
      redis.call('PEXPIRE', key, ttlMs)
      redis.call('ZADD', KEYS[2 + nb + indexPos], start, start)
      indexTouched[indexPos] = true
    end
    if publishCommand ~= '' then
      local resolution = string.match(member, '^([^:]+):')
      local message = { 'change', acceptedAt, ticker, resolution, start }
      for f = 1, #FIELDS do message[#message + 1] = values[f] end
      messages[#messages + 1] = { channelPrefix .. resolution, message }
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

if wasClean and #changed > 2 then changed[2] = redis.call('INCR', genKey) end
outliveBuckets(genKey)
-- Last, once every write is done: a receiver that reads the hot state on a message finds at least this state.
-- The last message of each channel says so: no other state of that series at this rev follows.
local lastOnChannel = {}
for i, m in ipairs(messages) do lastOnChannel[m[1]] = i end
for i, m in ipairs(messages) do
  local message = m[2]
  message[#message + 1] = lastOnChannel[m[1]] == i and '1' or ''
  redis.call(publishCommand, m[1], cjson.encode(message))
end
return changed
