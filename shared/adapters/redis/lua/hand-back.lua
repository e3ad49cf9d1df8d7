--[[
Ends the caller's lease of buckets it took but did not get into the archive. They stay
dirty, eligible again at now + delayMs (0: at once; more: parked, so a bucket the archive
keeps refusing waits instead of holding up the others). A member no longer scored at the
caller's lease end was re-leased by another flusher after this lease ran out, or cleaned:
it is left alone.

KEYS: dirty
ARGV: delayMs, per bucket: member, leaseEnd
]]

local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
local retryAt = now + tonumber(ARGV[1])
local handed = 0
for i = 2, #ARGV, 2 do
  local score = redis.call('ZSCORE', KEYS[1], ARGV[i])
  if score and tonumber(score) == tonumber(ARGV[i + 1]) then
    redis.call('ZADD', KEYS[1], 'XX', retryAt, ARGV[i])
    handed = handed + 1
  end
end
return handed
