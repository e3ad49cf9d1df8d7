--[[
Marks loaded buckets dirty again, keeping the time they first became dirty when they
already are. Missing and known-empty buckets are left alone.

KEYS: dirty, bucket hashes (nb)
ARGV: per bucket: member
]]

local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
local marked = 0
for b = 1, #KEYS - 1 do
  if redis.call('HEXISTS', KEYS[1 + b], 'n') == 1 then
    marked = marked + redis.call('ZADD', KEYS[1], 'NX', now, ARGV[b])
  end
end
return marked
