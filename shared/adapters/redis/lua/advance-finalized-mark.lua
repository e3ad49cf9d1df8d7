--[[
Moves the finalizer's mark (the end of the last finalized window, epoch ms) forward to
`to`, if it is behind. Atomic, so when several workers run the finalizer for the same
minute exactly one moves the mark and finalizes that window.

KEYS: mark
ARGV: to
Returns: {1, previous mark or ''} when moved, {0} when the mark was already at or past `to`
]]

local previous = redis.call('GET', KEYS[1])
if previous and tonumber(previous) >= tonumber(ARGV[1]) then return { 0 } end
redis.call('SET', KEYS[1], ARGV[1])
return { 1, previous or '' }
