--[[
The ticker registry: one hash of every ticker Pulse serves, and a counter of its changes
that every process polls. Both keys share one hash tag, so the script runs on one slot.

A field is a ticker; its value is `state:seq:changedAt` (`active:3:1712345678901`), where
`seq` orders the listing and `changedAt` is when it was added or retired (epoch ms).

KEYS: registry hash, change counter
ARGV[1] = 'seed': ARGV[2..] are ticker, value pairs, written only when the hash does not
  exist. Returns 1 when it seeded, 0 when the hash existed.
ARGV[1] = 'add', ARGV[2] ticker, ARGV[3] now: adds the ticker at the end of the listing, or
  makes a retired one active again keeping its place; an active one is left as it is.
  Returns {changed (1/0), value}.
ARGV[1] = 'retire', ARGV[2] ticker, ARGV[3] now: retires an active ticker. Returns
  {changed (1/0), value}, or {-1} when the hash does not hold the ticker.
]]

local op = ARGV[1]
if op == 'seed' then
  if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
  for i = 2, #ARGV, 2 do redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1]) end
  redis.call('INCR', KEYS[2])
  return 1
end

local ticker = ARGV[2]
local now = ARGV[3]
local held = redis.call('HGET', KEYS[1], ticker)
local state, seq
if held then state, seq = string.match(held, '^(%a+):(%d+):') end

if op == 'add' then
  if state == 'active' then return { 0, held } end
  if not seq then
    local max = -1
    for _, value in ipairs(redis.call('HVALS', KEYS[1])) do
      local s = tonumber(string.match(value, '^%a+:(%d+):'))
      if s and s > max then max = s end
    end
    seq = string.format('%d', max + 1)
  end
  local value = 'active:' .. seq .. ':' .. now
  redis.call('HSET', KEYS[1], ticker, value)
  redis.call('INCR', KEYS[2])
  return { 1, value }
end

if op == 'retire' then
  if not held then return { -1 } end
  if state == 'retired' then return { 0, held } end
  local value = 'retired:' .. seq .. ':' .. now
  redis.call('HSET', KEYS[1], ticker, value)
  redis.call('INCR', KEYS[2])
  return { 1, value }
end

return redis.error_reply('unknown ticker registry operation ' .. tostring(op))
