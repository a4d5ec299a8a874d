-- wrk script: each request polls a random person's notifications (after their acked cursor).
-- Set by run.py through the environment: SP_KEY (API key), SP_PEOPLE (how many), SP_LIMIT.
local key = os.getenv("SP_KEY")
local people = tonumber(os.getenv("SP_PEOPLE") or "10000")
local limit = os.getenv("SP_LIMIT") or "50"
local counter = 0

function setup(thread)
  thread:set("seed", counter)
  counter = counter + 1
end

function init(args)
  math.randomseed(os.time() + (seed or 0) * 7919)
end

request = function()
  local tid = 10000000 + math.random(1, people)
  local path = "/api/v1/notifications?telegram_id=" .. tid .. "&limit=" .. limit
  return wrk.format("GET", path, { ["X-API-Key"] = key })
end

local bad = 0
response = function(status, headers, body)
  if status ~= 200 then bad = bad + 1 end
end

done = function(summary, latency, requests)
  io.write(string.format("RESULT requests=%d duration_us=%d p50_us=%d p90_us=%d p99_us=%d errors=%d non2xx=%d\n",
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(90), latency:percentile(99),
    summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout,
    summary.errors.status))
end
