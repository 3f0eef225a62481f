-- wrk script: crossing limit orders of many users, each request the next user's key.
-- KEYS_FILE=keys.txt wrk -t2 -c32 -d10s -s benchmarks/wrk_users.lua http://127.0.0.1:8000
-- (keys.txt: one API key a line, as benchmarks/funded_users.py prints them; an even
-- count, so that half the users buy and half sell at the one price, and the book
-- stays small)
local keys = {}
for line in io.lines(os.getenv("KEYS_FILE")) do
  if line ~= "" then keys[#keys + 1] = line end
end
local n = 0
request = function()
  n = n + 1
  local side = (n % 2 == 0) and "buy" or "sell"
  local body = '{"symbol":"BTC_AIT","side":"' .. side ..
      '","type":"limit","quantity":"0.001","price":"30000"}'
  return wrk.format("POST", "/api/v1/trading/orders",
      {["Content-Type"] = "application/json", ["X-API-Key"] = keys[n % #keys + 1]}, body)
end
