// Helpers shared by the end-to-end tests: the simulator's HTTP endpoints, and measurements
// written to e2e/results/.
import { mkdirSync, writeFileSync } from "node:fs";
import path from "node:path";

/** A request to the simulator's API port; the JSON answer, or null. */
export async function sim(stack, method, route, body) {
  const response = await fetch(`${stack.simulatorUrl}${route}`, {
    method,
    headers: body ? { "content-type": "application/json" } : {},
    body: body ? JSON.stringify(body) : undefined,
  });
  return response.json().catch(() => null);
}

/** When the simulator answered each `agent_statuses` request recorded after `fromRequest`. */
export async function statusRequestTimes(stack, fromRequest) {
  return (await sim(stack, "GET", "/_sim/state")).requests
    .slice(fromRequest)
    .filter((r) => r.method === "POST" && r.path === "/apps/api/v1/agent_statuses")
    .map((r) => r.at_ms);
}

/** Writes `result` to e2e/results/`name`.json and prints it. */
export function record(name, result) {
  const out = path.join(import.meta.dirname, "results");
  mkdirSync(out, { recursive: true });
  writeFileSync(path.join(out, `${name}.json`), JSON.stringify(result, null, 2));
  console.log(`${name}: ${JSON.stringify(result)}`);
  return result;
}

/** p50, p99 and max of `latencies` (ms), recorded as `name` with `count` under `countName`. */
export function recordLatencies(name, countName, latencies) {
  const sorted = [...latencies].sort((a, b) => a - b);
  const pick = (q) => sorted[Math.min(sorted.length - 1, Math.ceil(q * sorted.length) - 1)];
  return record(name, { [countName]: sorted.length, p50_ms: pick(0.5), p99_ms: pick(0.99), max_ms: sorted.at(-1) });
}
