-- wrk script: PUT /api/v1/status for the agents whose session tokens are in STATUS_TOKENS
-- (space-separated), each request the next agent, alternating between two selectable statuses
-- (STATUS_A, STATUS_B), so every request is a change the platform must hear. STATUS_EVERY_MS
-- paces each connection (0: as fast as it can).
local tokens = {}
for token in string.gmatch(os.getenv("STATUS_TOKENS") or "", "%S+") do
  table.insert(tokens, token)
end
local a = os.getenv("STATUS_A")
local b = os.getenv("STATUS_B")
local every = tonumber(os.getenv("STATUS_EVERY_MS") or "0")
local n = 0
local non_2xx = 0

function request()
  n = n + 1
  local agent = (n - 1) % #tokens + 1
  local round = math.floor((n - 1) / #tokens)
  local status = (round % 2 == 0) and a or b
  return wrk.format("PUT", "/api/v1/status", {
    ["Content-Type"] = "application/json",
    ["Authorization"] = "Bearer " .. tokens[agent],
  }, string.format('{"status_id":%s,"at_ms":%d}', status, os.time() * 1000 + n))
end

function delay()
  return every
end

function response(status)
  if status >= 300 then
    non_2xx = non_2xx + 1
  end
end

function done(summary, latency, requests)
  io.write(string.format("requests %d, errors %d, non-2xx (this thread) %d\n",
    summary.requests, summary.errors.status + summary.errors.connect + summary.errors.timeout,
    non_2xx))
  for _, p in ipairs({50, 90, 99, 99.9}) do
    io.write(string.format("latency p%s %.2f ms\n", p, latency:percentile(p) / 1000))
  end
  io.write(string.format("latency max %.2f ms\n", latency.max / 1000))
end
