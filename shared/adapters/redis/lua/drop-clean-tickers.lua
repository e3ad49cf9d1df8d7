--[[
Removes tickers found clean from the dirty-tickers index, each only while its score is
still the dirty-gen it was found clean at. A ticker that became dirty since has a higher
gen: either its index write already raised the score (it stays), or that write comes
after this removal and adds it back.

KEYS: dirty-tickers
ARGV: per ticker: ticker, gen
]]

local removed = 0
for i = 1, #ARGV, 2 do
  local score = redis.call('ZSCORE', KEYS[1], ARGV[i])
  if score and tonumber(score) == tonumber(ARGV[i + 1]) then
    removed = removed + redis.call('ZREM', KEYS[1], ARGV[i])
  end
end
return removed
