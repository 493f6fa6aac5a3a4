-- wrk script: POST one documented CCAI session event per request, each with its own event id
-- and its own call, assigned to one of the simulator's agents (101-103), so that every request
-- is a new event the gateway records and shows on an agent's stream (no replays). AGENT_BASE and
-- AGENT_COUNT (environment) name other agents instead: ids AGENT_BASE to AGENT_BASE+COUNT-1
-- (the sessions examples/load issues when it holds sockets for this run).
local thread_count = 0

function setup(thread)
  thread_count = thread_count + 1
  thread:set("tid", thread_count)
end

function init(args)
  n = 0
  auth = os.getenv("WEBHOOK_AUTH") or ""
  agent_base = tonumber(os.getenv("AGENT_BASE") or "101")
  agent_count = tonumber(os.getenv("AGENT_COUNT") or "3")
end

function request()
  n = n + 1
  local id = string.format("%08x-%04x-4000-8000-%012x", n, tid, os.time() % 0xffffffff)
  local agent = agent_base + (n % agent_count)
  local body = string.format(
    '{"count":1,"events":[{"event_id":"%s","timestamp":1795276800000,"item":{"call_id":"bench-%d-%d-%d",' ..
    '"dn":"+14155552671","state":"connected","queue_path_names":["Support"],' ..
    '"participants":[{"type":"external","status":"connected"},' ..
    '{"type":"agent","status":"accepted","id":%d,"name":"Agent"}]}}]}',
    id, tid, n, os.time(), agent)
  return wrk.format("POST", "/webhooks/ccai/calls",
    { ["Content-Type"] = "application/json", ["Authorization"] = "Basic " .. auth }, body)
end

function done(summary, latency, requests)
  local non2xx = summary.errors.status
  io.write(string.format("webhooks: %d in %.1f s = %.0f/s; non-2xx %d; socket errors %d\n",
    summary.requests, summary.duration / 1e6, summary.requests / (summary.duration / 1e6), non2xx,
    summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout))
  io.write(string.format("latency: p50 %.2f ms, p90 %.2f ms, p99 %.2f ms, max %.2f ms\n",
    latency:percentile(50) / 1000, latency:percentile(90) / 1000, latency:percentile(99) / 1000,
    latency.max / 1000))
end
