--[[
Reads a shard's backlog. When the shard's queue holds no job at all (nothing waiting,
paused, active, delayed or prioritized), its backlog is zero whatever the counter says:
the counter is reset, so a count left behind by a gateway that died between queueing a
batch and counting it cannot build up over months.

KEYS: backlog hash, wait (list), paused (list), active (list), delayed (zset), prioritized (zset)
Returns: {items, bytes}
]]

local jobs = redis.call('LLEN', KEYS[2]) + redis.call('LLEN', KEYS[3]) + redis.call('LLEN', KEYS[4])
  + redis.call('ZCARD', KEYS[5]) + redis.call('ZCARD', KEYS[6])
if jobs == 0 then
  redis.call('DEL', KEYS[1])
  return { 0, 0 }
end
local values = redis.call('HMGET', KEYS[1], 'items', 'bytes')
return { tonumber(values[1]) or 0, tonumber(values[2]) or 0 }
