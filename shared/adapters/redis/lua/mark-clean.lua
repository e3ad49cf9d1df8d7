--[[
Records that the archive holds buckets at (at least) the given revs. A bucket whose hot rev
is not newer is clean and leaves the dirty set, whoever leases it: the archive already
holds this state or a newer one, and the conditional write makes any write still in flight
a no-op. One changed since stays dirty; if the caller's lease is still on it, it becomes
eligible again at once (another flusher's lease is left alone). One whose hash has expired
is dropped.

KEYS: dirty, bucket hashes (nb)
ARGV: per bucket: member, rev, leaseEnd ('' when the caller holds no lease)
]]

local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
local cleared = 0
for b = 1, #KEYS - 1 do
  local member, written, leaseEnd = ARGV[3 * b - 2], tonumber(ARGV[3 * b - 1]), tonumber(ARGV[3 * b])
  local rev = redis.call('HGET', KEYS[1 + b], 'rev')
  if not rev or tonumber(rev) <= written then
    cleared = cleared + redis.call('ZREM', KEYS[1], member)
  elseif leaseEnd and tonumber(redis.call('ZSCORE', KEYS[1], member)) == leaseEnd then
    redis.call('ZADD', KEYS[1], 'XX', now, member)
  end
end
return cleared
