--[[
Leases up to `limit` dirty buckets of one ticker to the caller's flush: the oldest members
whose score (the time they became dirty or may be retried, or a lease's end) has passed get
the score now + lease. Another worker's flush skips them until the lease ends, so two
flushers rarely write the same bucket at once; the archive's conditional write keeps the
newest rev when they do. A flusher that dies leaves the lease to run out, and the bucket is
taken again. The lease's end is the caller's token: hand-back.lua and mark-clean.lua only
touch a member still scored at it, never another flusher's newer lease.

KEYS: dirty
ARGV: limit, leaseMs
Returns: leaseEnd, then a flat list of member, score (the score it had when taken)
]]

local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
local taken = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now, 'WITHSCORES', 'LIMIT', 0, tonumber(ARGV[1]))
local leaseEnd = now + tonumber(ARGV[2])
for i = 1, #taken, 2 do
  redis.call('ZADD', KEYS[1], 'XX', leaseEnd, taken[i])
end
table.insert(taken, 1, tostring(leaseEnd))
return taken
