// Soak benchmark of the agent widget ("open all day"): one adapter in headless Chromium takes
// CALLS calls one after the other, as fast as the stack allows — ring, answer, hold, resume,
// end, wrap-up, and a status change every tenth call — and every hundred calls the script reports
// the widget's wasm memory (the running module's WebAssembly.Memory), its JS heap, and the DOM
// counters (nodes, JS event listeners). A report, not a pass/fail test.
//
//   trunk build --release && cargo build --release -p adapter-gateway -p adapter-simulator
//   node scripts/bench-soak.mjs [CALLS=2000]      (STACK_PROFILE=debug for debug servers)
//
// Writes target/bench/soak.json.
import { chromium } from "@playwright/test";
import { mkdirSync, mkdtempSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";

import { freePort, ROOT, startStack } from "./stack.mjs";

const calls = Number(process.argv[2] || 2000);
const AGENT = 101;
const stack = await startStack({
  ports: { gateway: await freePort(), simulator: await freePort(), host: await freePort() },
  dataDir: mkdtempSync(path.join(os.tmpdir(), "adapter-soak-")),
  profile: process.env.STACK_PROFILE || "release",
  quiet: true,
});
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  args: ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run", "--enable-precise-memory-info",
    "--js-flags=--expose-gc"],
});
const sim = async (method, route, body) => {
  const response = await fetch(`${stack.simulatorUrl}${route}`, {
    method,
    headers: body ? { "content-type": "application/json" } : {},
    body: body ? JSON.stringify(body) : undefined,
  });
  return { status: response.status, body: await response.json().catch(() => null) };
};

const samples = [];
try {
  const page = await browser.newPage({ viewport: { width: 1280, height: 720 } });
  const cdp = await page.context().newCDPSession(page);
  await page.goto(stack.hostUrl);
  const adapter = page.frameLocator("#adapter-frame");
  await page.locator("#message-log li[data-type='init']").first().waitFor();
  await adapter.locator(".sign-in button[type='submit']").click();
  const menu = adapter.locator("select.status-select");
  await menu.locator("option[value='0']").waitFor({ state: "attached" });
  const frame = () => page.frames().find((f) => f.url().startsWith(new URL(stack.adapterUrl).origin));
  const panel = adapter.locator(".call-panel");
  const state = (name) => adapter.locator(`.call-panel[data-state='${name}']`);

  // After wrap-up the platform makes the agent Available again; the stream shows it.
  async function available() {
    if ((await menu.inputValue()) !== "0") await menu.selectOption("0");
    await frame().waitForFunction(
      () => document.querySelector("select.status-select").value === "0" &&
        !document.querySelector(".call-panel:not([data-state='ended'])"),
      null,
      { polling: 10, timeout: 20_000 },
    );
  }

  async function measure(done) {
    const f = frame();
    await f.evaluate(() => window.gc && window.gc());
    const widget = await f.evaluate(() => ({
      wasm_bytes: window.wasmBindings ? window.wasmBindings.wasm_memory_bytes() : null,
      js_heap_bytes: performance.memory ? performance.memory.usedJSHeapSize : null,
    }));
    const { documents, nodes, jsEventListeners } = await cdp.send("Memory.getDOMCounters");
    const sample = { calls: done, ...widget, documents, nodes, js_event_listeners: jsEventListeners, at_ms: Date.now() };
    samples.push(sample);
    console.log(JSON.stringify(sample));
  }

  await available();
  await measure(0);
  const started = Date.now();
  for (let i = 1; i <= calls; i++) {
    const offered = await sim("POST", "/_sim/scenarios", { kind: "inbound_call", agent_id: AGENT, number: "+33612345678" });
    if (offered.status !== 201) throw new Error(`call ${i}: the simulator refused (${offered.status} ${JSON.stringify(offered.body)})`);
    await state("ringing").waitFor();
    await panel.locator("button.control-answer").click();
    await state("connected").waitFor();
    await panel.locator("button.control-hold").click();
    await state("onhold").waitFor();
    await panel.locator("button.control-resume").click();
    await state("connected").waitFor();
    if (i % 10 === 0) {
      // A next status chosen during the call, then cancelled.
      await menu.selectOption("-2");
      await adapter.locator(".next-status:not([hidden])").waitFor();
      await adapter.locator("button.cancel-next").click();
      await adapter.locator(".next-status[hidden]").waitFor({ state: "attached" });
    }
    await panel.locator("button.control-end").click();
    await state("wrapup").waitFor();
    await sim("POST", `/_sim/calls/${offered.body.id}/wrap_up_done`);
    await available();
    if (i % 100 === 0) await measure(i);
  }
  const seconds = (Date.now() - started) / 1000;
  const at = (n) => samples.find((s) => s.calls === n);
  const first = at(Math.min(500, calls)) || samples[0];
  const last = samples.at(-1);
  const result = {
    calls,
    seconds,
    calls_per_second: calls / seconds,
    wasm_growth_after_first_500_bytes: last.wasm_bytes - first.wasm_bytes,
    js_heap_growth_after_first_500_bytes: last.js_heap_bytes - first.js_heap_bytes,
    samples,
  };
  mkdirSync(path.join(ROOT, "target", "bench"), { recursive: true });
  writeFileSync(path.join(ROOT, "target", "bench", "soak.json"), JSON.stringify(result, null, 2));
  console.log(`soak: ${calls} calls in ${seconds.toFixed(0)} s; wasm memory ${samples[0].wasm_bytes} → ${last.wasm_bytes} B ` +
    `(growth over the last ${calls - first.calls} calls: ${result.wasm_growth_after_first_500_bytes} B); JS heap ` +
    `${samples[0].js_heap_bytes} → ${last.js_heap_bytes} B; listeners ${samples[0].js_event_listeners} → ${last.js_event_listeners}`);
} finally {
  await browser.close();
  await stack.stop();
}
