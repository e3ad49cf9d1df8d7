--[[
Marks loaded buckets dirty again so their final state is written, keeping the time they
first became dirty when they already are. Missing and known-empty buckets are left alone,
and so is a bucket written at or after its end (its archived state is final already).

KEYS: dirty, written (member -> time of its last write), dirty-gen (expires no sooner than
      the buckets it marks), bucket hashes (nb)
ARGV: per bucket: member, end (epoch ms)
Returns: {marked, gen}: gen is the ticker's dirty-gen while it has dirty buckets (bumped
when this call made its dirty set non-empty), -1 when it has none. The caller indexes a
ticker with gen >= 0 as dirty, which also repairs an index entry a crash lost.
]]

local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
local wasClean = redis.call('EXISTS', KEYS[1]) == 0
local marked = 0
local keepMs = 0
for b = 1, #KEYS - 3 do
  local member, ends = ARGV[2 * b - 1], tonumber(ARGV[2 * b])
  local writtenAt = redis.call('ZSCORE', KEYS[2], member)
  if redis.call('HEXISTS', KEYS[3 + b], 'n') == 1 and not (writtenAt and tonumber(writtenAt) >= ends) then
    marked = marked + redis.call('ZADD', KEYS[1], 'NX', now, member)
    keepMs = math.max(keepMs, redis.call('PTTL', KEYS[3 + b]))
  end
end
local gen = -1
if marked > 0 and wasClean then
  gen = redis.call('INCR', KEYS[3])
  -- Like a fold (lua/fold.lua), the dirty-gen outlives the buckets it marks.
  if redis.call('PTTL', KEYS[3]) < keepMs then redis.call('PEXPIRE', KEYS[3], keepMs) end
elseif redis.call('EXISTS', KEYS[1]) == 1 then
  gen = tonumber(redis.call('GET', KEYS[3]) or '0')
end
return { marked, gen }
