// Helpers shared by the end-to-end tests: the simulator's HTTP endpoints, and measurements
// written to e2e/results/.
import { mkdirSync, writeFileSync } from "node:fs";
import path from "node:path";

/**
 * A request to the simulator's API port; its JSON answer (null when it has no body). A set-up
 * step that fails must fail the test where it happened: any answer outside 2xx, and any network
 * error, throws with the route and the simulator's answer. `options.accept` lists other statuses
 * the caller expects and handles (their JSON answer is returned).
 */
export async function sim(stack, method, route, body, options = {}) {
  let response;
  try {
    response = await fetch(`${stack.simulatorUrl}${route}`, {
      method,
      headers: body ? { "content-type": "application/json" } : {},
      body: body ? JSON.stringify(body) : undefined,
    });
  } catch (error) {
    throw new Error(`simulator ${method} ${route}: ${error.message}`);
  }
  const text = await response.text();
  if (!response.ok && !(options.accept ?? []).includes(response.status)) {
    throw new Error(`simulator ${method} ${route}: HTTP ${response.status} ${text.slice(0, 500)}`);
  }
  if (!text) return null;
  try {
    return JSON.parse(text);
  } catch {
    throw new Error(`simulator ${method} ${route}: HTTP ${response.status} answered no JSON: ${text.slice(0, 200)}`);
  }
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

/**
 * Ada (the demo's admin) signed in to the gateway's agent API in a session of her own (the
 * adapter's untouched): `request(method, route, body)` answers the JSON answer and fails on any
 * answer outside 2xx.
 */
export async function adminSession(stack) {
  const api = new URL("api/v1/", stack.adapterUrl);
  const user = { id: "kus-user-1", email: "ada.lovelace@example.com" };
  const signIn = await fetch(new URL("sessions", api), {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ email: user.email, kustomer_user: user }),
  });
  if (!signIn.ok) throw new Error(`gateway sign-in: HTTP ${signIn.status} ${await signIn.text()}`);
  const { token } = await signIn.json();
  return {
    async request(method, route, body) {
      const response = await fetch(new URL(route.replace(/^\//, ""), api), {
        method,
        headers: { authorization: `Bearer ${token}`, ...(body ? { "content-type": "application/json" } : {}) },
        body: body ? JSON.stringify(body) : undefined,
      });
      const text = await response.text();
      if (!response.ok) throw new Error(`gateway ${method} ${route}: HTTP ${response.status} ${text.slice(0, 500)}`);
      return text ? JSON.parse(text) : null;
    },
  };
}

/** One request to the gateway's agent API as Ada, in a session signed in for it (see [adminSession]). */
export async function gatewayAsAdmin(stack, method, route, body) {
  return (await adminSession(stack)).request(method, route, body);
}
