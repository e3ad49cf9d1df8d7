--[[
Takes a folded (or finally failed) batch out of its shard's backlog, once per job however
often it is delivered: the job hash is marked settled, so a batch folded again after a
worker died, or failed again, is not taken out twice.

KEYS: job hash, backlog hash
ARGV: items, bytes
Returns: 1 when settled now, 0 when the job was already settled or is gone
]]

if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
if redis.call('HSETNX', KEYS[1], 'pulseSettled', '1') == 0 then return 0 end
redis.call('HINCRBY', KEYS[2], 'items', -tonumber(ARGV[1]))
redis.call('HINCRBY', KEYS[2], 'bytes', -tonumber(ARGV[2]))
return 1
