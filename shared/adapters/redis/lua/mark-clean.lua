--[[
Clears the dirty mark of buckets written at the given revs. A bucket changed since (its
rev moved on) stays dirty; one whose hash has expired is dropped from the set.

KEYS: dirty, bucket hashes (nb)
ARGV: per bucket: member, rev
]]

local cleared = 0
for b = 1, #KEYS - 1 do
  local rev = redis.call('HGET', KEYS[1 + b], 'rev')
  if not rev or tonumber(rev) == tonumber(ARGV[2 * b]) then
    cleared = cleared + redis.call('ZREM', KEYS[1], ARGV[2 * b - 1])
  end
end
return cleared
