--[[
Installs buckets read from the archive for refs that are still missing. A ref without a
bucket becomes a known-empty marker (a hash with only rev = 0). Never overwrites a hash
that exists, so a fold that raced ahead of the load keeps its state.

KEYS: bucket hashes (nb), series indexes (ni)
ARGV: nb, ni,
      per index: ttlMs
      per bucket: indexPos, start, ttlMs, 18 fields (empty `n` = known-empty; see bucket-codec.ts)
]]

local FIELDS = { 'o', 'h', 'l', 'c', 'n', 's', 'pos', 'neu', 'neg', 'src', 'fts', 'fid', 'lts', 'lid', 'rev', 'upd', 'seq', 'ep' }
local PER_BUCKET = 21

local nb, ni = tonumber(ARGV[1]), tonumber(ARGV[2])
local bucketBase = 2 + ni

for b = 1, nb do
  local key = KEYS[b]
  if redis.call('EXISTS', key) == 0 then
    local base = bucketBase + PER_BUCKET * (b - 1)
    local indexPos, start, ttlMs = tonumber(ARGV[base + 1]), ARGV[base + 2], ARGV[base + 3]
    if ARGV[base + 3 + 5] == '' then
      redis.call('HSET', key, 'rev', '0')
    else
      local hset = {}
      for f = 1, #FIELDS do
        local value = ARGV[base + 3 + f]
        if value ~= '' then
          hset[#hset + 1] = FIELDS[f]
          hset[#hset + 1] = value
        end
      end
      redis.call('HSET', key, unpack(hset))
      local indexKey = KEYS[nb + indexPos]
      redis.call('ZADD', indexKey, start, start)
      redis.call('PEXPIRE', indexKey, ARGV[2 + indexPos])
    end
    redis.call('PEXPIRE', key, ttlMs)
  end
end

return nb
