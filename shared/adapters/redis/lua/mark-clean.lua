--[[
Records that the archive holds buckets at (at least) the given revs, and when (for the
flush cadence of take-dirty.lua). A bucket whose hot rev is not newer is clean and leaves
the dirty set, whoever leases it: the archive already holds this state or a newer one, and
the conditional write makes any write still in flight a no-op. One changed since stays
dirty; if the caller's lease is still on it, it goes back in line (due once its cadence
has passed) — another flusher's lease is left alone. One whose hash has expired is
dropped. Write times older than the longest cadence no longer matter and are trimmed.

KEYS: dirty, written, bucket hashes (nb)
ARGV: keepMs, per bucket: member, rev, leaseEnd ('' when the caller holds no lease)
]]

local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
local keepMs = tonumber(ARGV[1])
local cleared = 0
for b = 1, #KEYS - 2 do
  local member, written, leaseEnd = ARGV[3 * b - 1], tonumber(ARGV[3 * b]), tonumber(ARGV[3 * b + 1])
  local rev = redis.call('HGET', KEYS[2 + b], 'rev')
  redis.call('ZADD', KEYS[2], now, member)
  if not rev or tonumber(rev) <= written then
    cleared = cleared + redis.call('ZREM', KEYS[1], member)
  elseif leaseEnd and tonumber(redis.call('ZSCORE', KEYS[1], member)) == leaseEnd then
    redis.call('ZADD', KEYS[1], 'XX', now, member)
  end
end
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now - keepMs)
redis.call('PEXPIRE', KEYS[2], keepMs)
return cleared
