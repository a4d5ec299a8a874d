-- wrk script: the mixed load of 40 bots (issue 12). Each request is, at random:
--   55% a poll (GET /notifications, the fast path), 20% an ack (POST /notifications/ack of the
--   newest cursor this thread has seen: acks never move a cursor back, nor past the newest
--   notification), 5% a batch poll of 50 people, 10% a dashboard, 10% a page of orders.
-- Set by run.py through the environment: SP_KEY, SP_PEOPLE, SP_SHOPS; SP_ONLY (poll, ack,
-- batch, dashboard or orders): that kind of request alone (the breakdown, run.py --kinds).
local key = os.getenv("SP_KEY")
local people = tonumber(os.getenv("SP_PEOPLE") or "10000")
local shops = tonumber(os.getenv("SP_SHOPS") or "500")
local counter = 0
local json = { ["X-API-Key"] = key, ["Content-Type"] = "application/json" }
local plain = { ["X-API-Key"] = key }
local cursor = 0
-- Each kind's share as the upper end of its range of rolls (1..100).
local kinds = { { "poll", 55 }, { "ack", 75 }, { "batch", 80 }, { "dashboard", 90 }, { "orders", 100 } }
local only = os.getenv("SP_ONLY")

function init(args)
  math.randomseed(os.time() + (seed or 0) * 7919)
end

request = function()
  local p = math.random(1, people)
  local tid = 10000000 + p
  local shop = 1 + p % shops -- the shop this person owns (benchmarks/api/fill.py)
  local roll = math.random(1, 100)
  if only then
    for i, kind in ipairs(kinds) do
      if kind[1] == only then roll = kind[2] end
    end
  end
  if roll <= 55 then
    return wrk.format("GET", "/api/v1/notifications?telegram_id=" .. tid .. "&limit=50", plain)
  elseif roll <= 75 then
    return wrk.format("POST", "/api/v1/notifications/ack?telegram_id=" .. tid, json, '{"cursor": ' .. cursor .. '}')
  elseif roll <= 80 then
    local ids = {}
    for i = 1, 50 do ids[i] = 10000000 + math.random(1, people) end
    return wrk.format("POST", "/api/v1/notifications/poll", json, '{"telegram_ids": [' .. table.concat(ids, ",") .. '], "limit": 20}')
  elseif roll <= 90 then
    return wrk.format("GET", "/api/v1/shops/" .. shop .. "/dashboard?telegram_id=" .. tid, plain)
  else
    return wrk.format("GET", "/api/v1/shops/" .. shop .. "/orders?telegram_id=" .. tid .. "&limit=20", plain)
  end
end

bad, server_errors = 0, 0 -- globals: done() reads them from each thread
response = function(status, headers, body)
  if status ~= 200 then bad = bad + 1 end
  if status >= 500 then server_errors = server_errors + 1 end
  local found = body and string.match(body, '"next_cursor":(%d+)')
  if found and tonumber(found) > cursor then cursor = tonumber(found) end
end

-- Per-thread counters, summed in done() (wrk runs it once, on the main thread).
local threads = {}
function setup(thread)
  thread:set("seed", counter)
  counter = counter + 1
  table.insert(threads, thread)
end

done = function(summary, latency, requests)
  local errors5xx, non200 = 0, 0
  for _, thread in ipairs(threads) do
    errors5xx = errors5xx + (thread:get("server_errors") or 0)
    non200 = non200 + (thread:get("bad") or 0)
  end
  io.write(string.format("RESULT requests=%d duration_us=%d p50_us=%d p90_us=%d p99_us=%d errors=%d non2xx=%d s5xx=%d non200=%d\n",
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(90), latency:percentile(99),
    summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout,
    summary.errors.status, errors5xx, non200))
end
