--[[
Moves the finalizer's mark (the end of the last finalized window, epoch ms) forward to
`to`, if it is behind. Atomic, so when several workers run the finalizer for the same
minute exactly one moves the mark and finalizes that window.

`to` is capped at the server's clock, rounded down to `step`: a worker whose clock runs
ahead can never finalize buckets that are still open, nor move the shared mark past them.

KEYS: mark
ARGV: to, step (ms)
Returns: {1, previous mark or '', new mark} when moved, {0} when the mark was already at
or past the (capped) `to`
]]

local time = redis.call('TIME')
local serverNow = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
local step = tonumber(ARGV[2])
local to = math.min(tonumber(ARGV[1]), math.floor(serverNow / step) * step)
local previous = redis.call('GET', KEYS[1])
if previous and tonumber(previous) >= to then return { 0 } end
local mark = string.format('%d', to)
redis.call('SET', KEYS[1], mark)
return { 1, previous or '', mark }
