--[[
Installs buckets read from the archive for refs the fold asked to load, and reconciles the
ones a hot state of an earlier term still holds. A ref without a bucket becomes a
known-empty marker (a hash with only rev). A bucket of the current term is never touched,
so a fold that raced ahead of the load keeps its state.

When the ticker's position belongs to this Redis server's run (the fold that asked for the
load has set it), every bucket installed or reconciled takes the ticker's current position
as its rev: above anything an earlier term issued, so readers, gateways and clients that
hold a lost or rolled-back state take this one. A bucket of an earlier term keeps the newer
of its hot state and the archive's (a promoted replica may lag behind what was written).
Without such a position, missing buckets are installed as the archive has them and nothing
else changes: the next fold asks for a term and loads again.

KEYS: bucket hashes (nb), series indexes (ni), position (hash: run, term, count)
ARGV: nb, ni,
      per index: ttlMs
      per bucket: indexPos, start, ttlMs, 19 fields (empty `n` = known-empty; see bucket-codec.ts)
]]

local FIELDS = { 'o', 'h', 'l', 'c', 'n', 's', 'pos', 'neu', 'neg', 'src', 'fts', 'fid', 'lts', 'lid', 'rev', 'upd', 'seq', 'ep', 'trunc' }
local PER_BUCKET = 22
local TERM_SPAN = 268435456

local nb, ni = tonumber(ARGV[1]), tonumber(ARGV[2])
local bucketBase = 2 + ni
local positionKey = KEYS[nb + ni + 1]

local run = string.match(redis.call('INFO', 'server'), 'run_id:(%w+)')
local held = redis.call('HMGET', positionKey, 'run', 'term', 'count')
local stamp, termFloor
if held[1] == run and held[2] and held[3] then
  termFloor = tonumber(held[2]) * TERM_SPAN
  stamp = string.format('%.17g', termFloor + tonumber(held[3]))
end

local function install (key, base, indexPos, start, ttlMs)
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

for b = 1, nb do
  local key = KEYS[b]
  local base = bucketBase + PER_BUCKET * (b - 1)
  local indexPos, start, ttlMs = tonumber(ARGV[base + 1]), ARGV[base + 2], ARGV[base + 3]
  local hotRev = redis.call('HGET', key, 'rev')
  if not hotRev then
    install(key, base, indexPos, start, ttlMs)
    if stamp then redis.call('HSET', key, 'rev', stamp) end
  elseif stamp and tonumber(hotRev) < termFloor then
    local archived = ARGV[base + 3 + 5] ~= '' and tonumber(ARGV[base + 3 + 15]) or -1
    if archived > tonumber(hotRev) then
      redis.call('DEL', key)
      install(key, base, indexPos, start, ttlMs)
    end
    redis.call('HSET', key, 'rev', stamp)
  end
end

return nb
