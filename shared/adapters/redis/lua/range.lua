-- A series' buckets in [from, to), read in one step: no fold lands between the index read
-- and the bucket reads, so the answer is the series' state at one position (a gateway
-- vouches to its clients that it holds every state up to the newest rev it read).
-- KEYS[1]: the series' index; ARGV: from, '(' .. to, bucket key prefix, then the fields.
-- Returns, per bucket, its start followed by its fields' values.
local starts = redis.call('ZRANGEBYSCORE', KEYS[1], ARGV[1], ARGV[2])
local fields = {}
for i = 4, #ARGV do fields[#fields + 1] = ARGV[i] end
local out = {}
for _, start in ipairs(starts) do
  out[#out + 1] = start
  local values = redis.call('HMGET', ARGV[3] .. start, unpack(fields))
  for j = 1, #fields do out[#out + 1] = values[j] or false end
end
return out
