-- One scripts/bench scenario for wrk, configured through environment variables (wrk runs this
-- file once per thread and once more for setup/done, each in its own Lua state):
--
--   BENCH_METHOD    GET (default) or POST
--   BENCH_PATH      request path; "{id}" in it is replaced by a random line of BENCH_IDS
--   BENCH_IDS       file with one id a line (needed when BENCH_PATH has "{id}")
--   BENCH_BODY      request body (sent with Content-Type: application/json)
--   BENCH_TOKEN     bearer token (Authorization header)
--   BENCH_DELAY_MS  pause before each request on a connection (a paced probe, not a flood)
--   BENCH_STRICT=1  count every response's status (exact non-2xx count; costs wrk some speed,
--                   so scripts/bench uses it for warm-ups and --quick only)
--   BENCH_OUT       where done() writes the result as one JSON object
--
-- Without "{id}" and without BENCH_DELAY_MS the request is static: wrk formats it once and
-- this script adds no per-request work at all.

local method = os.getenv("BENCH_METHOD") or "GET"
local path = os.getenv("BENCH_PATH") or "/"
local ids_file = os.getenv("BENCH_IDS")
local body = os.getenv("BENCH_BODY")
local token = os.getenv("BENCH_TOKEN")
local delay_ms = tonumber(os.getenv("BENCH_DELAY_MS") or "0") or 0
local strict = os.getenv("BENCH_STRICT") == "1"
local out = os.getenv("BENCH_OUT")

wrk.method = method
wrk.path = path
if body and body ~= "" then
  wrk.body = body
  wrk.headers["Content-Type"] = "application/json"
end
if token and token ~= "" then
  wrk.headers["Authorization"] = "Bearer " .. token
end

-- Dynamic paths: every request a random id, from requests formatted once per thread.
if path:find("{id}", 1, true) then
  local requests = {}
  function init(args)
    assert(ids_file, "BENCH_PATH has {id} but BENCH_IDS is not set")
    for id in io.lines(ids_file) do
      if id ~= "" then
        local p = path:gsub("{id}", id)
        requests[#requests + 1] = wrk.format(nil, p)
      end
    end
    assert(#requests > 0, "no ids in " .. ids_file)
    math.randomseed(os.time() + tonumber(tostring({}):match("0x(%x+)") or "0", 16) % 100000)
  end
  function request()
    return requests[math.random(#requests)]
  end
end

if delay_ms > 0 then
  function delay()
    return delay_ms
  end
end

-- Per-thread counters (read by done() through thread:get).
ok = 0
bad = 0
bad_status = 0
if strict then
  function response(status, headers, body)
    if status >= 200 and status < 300 then
      ok = ok + 1
    else
      bad = bad + 1
      bad_status = status
    end
  end
end

local threads = {}
function setup(thread)
  threads[#threads + 1] = thread
end

function done(summary, latency, requests)
  local bad_total, ok_total, last_bad = 0, 0, 0
  for _, t in ipairs(threads) do
    bad_total = bad_total + (t:get("bad") or 0)
    ok_total = ok_total + (t:get("ok") or 0)
    local s = t:get("bad_status") or 0
    if s ~= 0 then last_bad = s end
  end
  local e = summary.errors
  local seconds = summary.duration / 1e6
  -- Without strict counting wrk itself only counts statuses >= 400 (errors.status).
  local non2xx = strict and bad_total or e.status
  local ms = function(us) return us / 1000 end
  local json = string.format(
    '{"requests":%d,"duration_s":%.3f,"rps":%.1f,"mean_ms":%.3f,"p50_ms":%.3f,"p90_ms":%.3f,'
      .. '"p99_ms":%.3f,"max_ms":%.3f,"bytes":%d,"non2xx":%d,"strict":%s,"ok2xx":%d,'
      .. '"last_non2xx_status":%d,"errors":{"connect":%d,"read":%d,"write":%d,"timeout":%d,"status_ge_400":%d}}',
    summary.requests, seconds, summary.requests / seconds, ms(latency.mean),
    ms(latency:percentile(50)), ms(latency:percentile(90)), ms(latency:percentile(99)),
    ms(latency.max), summary.bytes, non2xx, tostring(strict), ok_total, last_bad,
    e.connect, e.read, e.write, e.timeout, e.status)
  if out and out ~= "" then
    local f = assert(io.open(out, "w"))
    f:write(json, "\n")
    f:close()
  else
    io.write(json, "\n")
  end
end
