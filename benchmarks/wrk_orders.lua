-- wrk script: alternate crossing limit orders of two users, so the book stays small.
-- KEY_A=... KEY_B=... wrk -t2 -c64 -d10s --latency -s benchmarks/wrk_orders.lua http://127.0.0.1:8000
-- (the demo users' keys are printed by `make run`)
-- KEYS_FILE=FILE (one API key a line, as trading_engine.benchmarks.users prints them) rotates
-- over those users' keys instead, each request the next key; with an even count of keys each
-- user always buys or always sells at the one price, so the book stays small
-- (benchmarks/rest_orders.sh, redis_penalty.sh and order_entry.sh: 100 users).
-- ECHO_ONLY=1 posts the same bodies to /echo (the bare echo of trading_engine/benchmarks/echo.py).
local keys = {}
if os.getenv("KEYS_FILE") then
  for line in io.lines(os.getenv("KEYS_FILE")) do
    if line ~= "" then keys[#keys + 1] = line end
  end
else
  keys = {os.getenv("KEY_A") or "", os.getenv("KEY_B") or ""}
end
local path = os.getenv("ECHO_ONLY") and "/echo" or "/api/v1/trading/orders"
local n = 0
request = function()
  n = n + 1
  local key, side = keys[n % #keys + 1], "buy"
  if n % 2 == 1 then side = "sell" end
  local body = '{"symbol":"BTC_AIT","side":"' .. side ..
      '","type":"limit","quantity":"0.001","price":"30000"}'
  return wrk.format("POST", path,
      {["Content-Type"] = "application/json", ["X-API-Key"] = key}, body)
end
