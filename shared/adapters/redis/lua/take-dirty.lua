--[[
Leases up to `limit` dirty buckets of one ticker to the caller's flush, oldest first. A
bucket is due when its score (the time it became dirty or may be retried, or a lease's
end) has passed and, if it was written before, its resolution's cadence has passed since
that write — unless the bucket has ended since that write, which makes it due at once, so
every bucket's final state is written promptly. A bucket not yet due is skipped and keeps
its score; a due one gets the score now + lease. Another worker's
flush skips leased buckets until the lease ends, so two flushers rarely write the same
bucket at once (the archive's conditional write keeps the newest rev when they do). A
flusher that dies leaves the lease to run out, and the bucket is taken again. The lease's
end is the caller's token: hand-back.lua and mark-clean.lua only touch a member still
scored at it, never another flusher's newer lease.

KEYS: dirty, written (member -> time of its last write), dirty-gen
ARGV: limit, leaseMs, n, per resolution (n): name, durationMs, cadenceMs (none given: no cadence)
Returns: leaseEnd, cleanGen, then a flat list of member, score (the score it had when taken).
cleanGen is '' while the ticker has dirty buckets; when it has none, the dirty-gen it was
found clean at ('0' before its first), which lets the caller drop it from the dirty-tickers
index unless it became dirty again since.
]]

local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
local limit = tonumber(ARGV[1])
local leaseEnd = now + tonumber(ARGV[2])
local duration, cadence = {}, {}
for i = 1, tonumber(ARGV[3]) do
  local base = 3 + 3 * (i - 1)
  duration[ARGV[base + 1]] = tonumber(ARGV[base + 2])
  cadence[ARGV[base + 1]] = tonumber(ARGV[base + 3])
end

local function isDue (member, writtenAt)
  if not writtenAt then return true end
  local colon = string.find(member, ':', 1, true)
  local resolution = string.sub(member, 1, colon - 1)
  local every = cadence[resolution]
  if not every or writtenAt + every <= now then return true end
  -- Ended since its last write: its final state is due at once.
  local ends = tonumber(string.sub(member, colon + 1)) + duration[resolution]
  return ends <= now and writtenAt < ends
end

-- Scan past members that are dirty but not yet due (a few per ticker: the long resolutions),
-- then lease the due ones, so leasing does not shift the pages being read.
local due = {}
local offset, page = 0, math.max(limit, 100)
while #due < 2 * limit do
  local batch = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now, 'WITHSCORES', 'LIMIT', offset, page)
  if #batch == 0 then break end
  offset = offset + #batch / 2
  local members = {}
  for i = 1, #batch, 2 do members[#members + 1] = batch[i] end
  local written = redis.call('ZMSCORE', KEYS[2], unpack(members))
  for j = 1, #members do
    if #due < 2 * limit and isDue(members[j], written[j] and tonumber(written[j])) then
      due[#due + 1] = members[j]
      due[#due + 1] = batch[2 * j]
    end
  end
end

for i = 1, #due, 2 do
  redis.call('ZADD', KEYS[1], 'XX', leaseEnd, due[i])
end
local cleanGen = ''
if redis.call('EXISTS', KEYS[1]) == 0 then cleanGen = redis.call('GET', KEYS[3]) or '0' end
table.insert(due, 1, cleanGen)
table.insert(due, 1, tostring(leaseEnd))
return due
