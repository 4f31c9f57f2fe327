-- wrk script of bench/serving.py: which requests to send (BENCH_MODE), and a JSON summary line.
--   BENCH_MODE  recommendations | propensity | events   BENCH_USERS  users u000000..
--   BENCH_TOKEN the bearer token of POST /v1/events
-- wrk keeps every request's latency in its histogram; done() prints its percentiles.
local mode = os.getenv("BENCH_MODE") or "recommendations"
local users = tonumber(os.getenv("BENCH_USERS") or "1000")
local token = os.getenv("BENCH_TOKEN") or ""
local threads = {}
local counter = 0

function setup(thread)
  thread:set("thread_id", #threads)
  table.insert(threads, thread)
end

function init(args)
  math.randomseed(os.time() + (thread_id or 0))
  prefix = string.format("wrk-%d-%d", thread_id or 0, math.random(1, 1000000000))
end

function request()
  counter = counter + 1
  local user = string.format("u%06d", counter % users)
  if mode == "propensity" then
    return wrk.format("GET", "/v1/users/" .. string.format("u%06d", (counter * 7) % users) .. "/propensity")
  elseif mode == "events" then
    local body = string.format(
      '{"event_id":"%s-%d","user_id":"%s","item_id":"i00001","event_type":"view","event_ts":"%s","quantity":1}',
      prefix, counter, user, os.date("!%Y-%m-%dT%H:%M:%S+00:00"))
    return wrk.format("POST", "/v1/events",
      {["Content-Type"] = "application/json", ["Authorization"] = "Bearer " .. token}, body)
  end
  return wrk.format("GET", "/v1/users/" .. user .. "/recommendations")
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'WRK_JSON {"requests": %d, "duration_us": %d, "p50_us": %d, "p95_us": %d, "p99_us": %d, ' ..
    '"max_us": %d, "non_2xx": %d, "socket_errors": %d}\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(95),
    latency:percentile(99), latency.max, e.status, e.connect + e.read + e.write + e.timeout))
end
