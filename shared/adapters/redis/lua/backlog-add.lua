--[[
Counts a batch into its ingest shard's backlog (admission control): the items and bytes
accepted and not yet folded. The gateway calls it with each enqueue and reads the new
totals from the reply, so it learns of other gateways' batches at no extra cost.

KEYS: backlog hash (fields `items`, `bytes`)
ARGV: items, bytes (negative to take back a batch that was not queued)
Returns: {items, bytes} after the change
]]

local items = redis.call('HINCRBY', KEYS[1], 'items', ARGV[1])
local bytes = redis.call('HINCRBY', KEYS[1], 'bytes', ARGV[2])
return { items, bytes }
