--[[
Ends the caller's lease of buckets it took but did not get into the archive. They stay
dirty, eligible again at now + delayMs (0: at once; more: parked, so a bucket the archive
keeps refusing waits instead of holding up the others). A bucket whose hash is gone
(expired, or rolled back by a failover) can never be written and leaves the dirty set; the
check is made here, atomically, because a fold may bring the bucket back after the caller
found it missing. A member no longer scored at the caller's lease end was re-leased by
another flusher after this lease ran out, or cleaned: it is left alone.

KEYS: dirty, bucket hashes (one per member, in order)
ARGV: delayMs, per bucket: member, leaseEnd
]]

local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
local retryAt = now + tonumber(ARGV[1])
local handed = 0
for b = 1, #KEYS - 1 do
  local member, leaseEnd = ARGV[2 * b], ARGV[2 * b + 1]
  local score = redis.call('ZSCORE', KEYS[1], member)
  if score and tonumber(score) == tonumber(leaseEnd) then
    if redis.call('EXISTS', KEYS[1 + b]) == 1 then
      redis.call('ZADD', KEYS[1], 'XX', retryAt, member)
      handed = handed + 1
    else
      redis.call('ZREM', KEYS[1], member)
    end
  end
end
return handed
