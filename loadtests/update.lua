-- wrk script for the benchmark: POST updates with unique operation_ids over N SKUs.
--   wrk -s loadtests/update.lua <url> -- <path-prefix> <skus> <run-tag>
-- path-prefix is "/v1/local/inventory" (the update path) or "/_bench/noop" (the ceiling).
-- Prints one JSON line at the end (latencies in microseconds).

local counter = 0
local threads = {}
local prefix, skus, tag

function setup(thread)
  thread:set("id", #threads + 1)
  table.insert(threads, thread)
end

function init(args)
  prefix = args[1] or "/v1/local/inventory"
  skus = tonumber(args[2] or "1000")
  tag = args[3] or "run"
  suffix = (prefix == "/_bench/noop") and "" or "/update"
  wrk.method = "POST"
  wrk.headers["Content-Type"] = "application/json"
  math.randomseed(id * 7919 + os.time())
end

function request()
  counter = counter + 1
  local sku = math.random(1, skus)
  local delta = math.random(1, 3)
  if math.random() < 0.8 then delta = -delta end
  local body = string.format('{"delta":%d,"operation_id":"%s-%d-%d"}', delta, tag, id, counter)
  return wrk.format(nil, string.format("%s/SKU-%05d%s", prefix, sku, suffix), nil, body)
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'WRKJSON {"requests":%d,"duration_us":%d,"bytes":%d,"connect_errors":%d,' ..
    '"read_errors":%d,"write_errors":%d,"timeouts":%d,"non_2xx":%d,' ..
    '"p50_us":%d,"p90_us":%d,"p99_us":%d,"max_us":%d,"mean_us":%.1f}\n',
    summary.requests, summary.duration, summary.bytes, e.connect, e.read, e.write,
    e.timeout, e.status, latency:percentile(50), latency:percentile(90),
    latency:percentile(99), latency.max, latency.mean))
end
