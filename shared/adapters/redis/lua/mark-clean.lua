--[[
Ends the lease of buckets a flush wrote. A bucket written at its current rev is clean
and leaves the dirty set; one changed since (its rev moved on) becomes eligible again at
once; one whose hash has expired is dropped.

KEYS: dirty, bucket hashes (nb)
ARGV: per bucket: member, rev
]]

local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
local cleared = 0
for b = 1, #KEYS - 1 do
  local rev = redis.call('HGET', KEYS[1 + b], 'rev')
  if not rev or tonumber(rev) == tonumber(ARGV[2 * b]) then
    cleared = cleared + redis.call('ZREM', KEYS[1], ARGV[2 * b - 1])
  else
    redis.call('ZADD', KEYS[1], 'XX', now, ARGV[2 * b - 1])
  end
end
return cleared
