-- wrk script for the benchmark: POST updates with unique operation_ids over N SKUs.
--   wrk -s loadtests/update.lua <url> -- <path-prefix> <skus> <run-tag> [sequential|random]
-- path-prefix is "/v1/local/inventory" (the update path) or "/_bench/noop" (the ceiling).
-- operation_ids are "<tag>-<thread>-<counter>" (sequential, the default) or random UUIDv4-shaped
-- strings, as clients that draw a fresh UUID per change send them (random).
-- Prints one JSON line at the end (latencies in microseconds).

local counter = 0
local threads = {}
local prefix, skus, tag, random_ids

function setup(thread)
  thread:set("id", #threads + 1)
  table.insert(threads, thread)
end

function init(args)
  prefix = args[1] or "/v1/local/inventory"
  skus = tonumber(args[2] or "1000")
  tag = args[3] or "run"
  random_ids = (args[4] == "random")
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
  local op
  if random_ids then
    local r = math.random
    op = string.format("%04x%04x-%04x-4%03x-%04x-%04x%04x%04x", r(0, 65535), r(0, 65535),
      r(0, 65535), r(0, 4095), r(32768, 49151), r(0, 65535), r(0, 65535), r(0, 65535))
  else
    op = string.format("%s-%d-%d", tag, id, counter)
  end
  local body = string.format('{"delta":%d,"operation_id":"%s"}', delta, op)
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
