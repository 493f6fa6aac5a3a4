// Soak benchmark of the agent widget ("open all day"): one adapter in headless Chromium takes
// CALLS calls one after the other, as fast as the stack allows — ring, answer, hold, resume,
// end, wrap-up, and a status change every tenth call — and every hundred calls the script reports
// the widget's wasm memory (the running module's WebAssembly.Memory), its JS heap, the DOM
// counters of the page (nodes, JS event listeners), and what the widget's own frame holds: its
// nodes, the event listeners on its window and document tree (by type), its pending timeouts,
// running intervals, open BroadcastChannels and WebSockets (counted by wrapping the constructors
// and timer functions before the widget loads). The JS heap is read after a full GC, with and
// without the console messages the browser keeps for DevTools (up to 1,000, the browser's, not
// the widget's: cleared at every sample). At the end: the growth over the last 1,500 calls (the
// issue's bound: under 256 KB, and no listener, timer or channel left behind). A report, not a
// pass/fail test.
//
//   trunk build --release && cargo build --release -p adapter-gateway -p adapter-simulator
//   node scripts/bench-soak.mjs [CALLS=2000]      (STACK_PROFILE=debug for debug servers)
//
// Writes target/bench/soak.json. SOAK_HEAP_SNAPSHOTS=1 also takes a JS heap snapshot at every
// sample and writes what grew, per constructor (objects and bytes), from the middle sample to
// the last (target/bench/soak-heap.json): what calls leave behind in JS, when the heap grows.
// The snapshot is of the whole page (the host emulator's capped message log, DevTools' network
// buffers and compiled code are in it too).
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
  // In every frame, before its scripts run: live timers, channels and sockets, counted.
  await page.addInitScript(() => {
    const live = { timeouts: new Set(), intervals: new Set(), channels: new Set(), sockets: new Set() };
    const { setTimeout: st, clearTimeout: ct, setInterval: si, clearInterval: ci } = window;
    window.setTimeout = function (handler, ms, ...args) {
      let id;
      const run = typeof handler === "function"
        ? function (...a) { live.timeouts.delete(id); return handler.apply(this, a); }
        : handler;
      id = st.call(window, run, ms, ...args);
      live.timeouts.add(id);
      return id;
    };
    window.clearTimeout = function (id) { live.timeouts.delete(id); return ct.call(window, id); };
    window.setInterval = function (...args) { const id = si.apply(window, args); live.intervals.add(id); return id; };
    window.clearInterval = function (id) { live.intervals.delete(id); return ci.call(window, id); };
    const Channel = window.BroadcastChannel;
    window.BroadcastChannel = class extends Channel {
      constructor(name) { super(name); live.channels.add(this); }
      close() { live.channels.delete(this); return super.close(); }
    };
    const Socket = window.WebSocket;
    window.WebSocket = class extends Socket {
      constructor(...args) {
        super(...args);
        live.sockets.add(this);
        super.addEventListener("close", () => live.sockets.delete(this));
      }
    };
    Object.defineProperty(window, "__soakLive", {
      value: () => ({
        timeouts: live.timeouts.size, intervals: live.intervals.size,
        channels: live.channels.size, sockets: live.sockets.size,
        nodes: document.getElementsByTagName("*").length,
      }),
    });
  });
  // The console messages of the run: the browser keeps them (up to 1,000) for DevTools, in the
  // JS heap, so the heap is measured with them and without them (see `measure`).
  let consoleMessages = 0;
  page.on("console", () => { consoleMessages += 1; });
  const cdp = await page.context().newCDPSession(page);
  // The widget frame's main-world context, for its listeners.
  const contexts = new Map();
  cdp.on("Runtime.executionContextCreated", ({ context }) => {
    if (context.auxData && context.auxData.isDefault) contexts.set(context.auxData.frameId, context.id);
  });
  await cdp.send("Runtime.enable");
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
      // The chip follows the stream (the platform's status), not the menu's own selection.
      () => document.querySelector("select.status-select").value === "0" &&
        document.querySelector(".status-chip.chip-green") &&
        !document.querySelector(".call-panel:not([hidden]):not([data-state='ended'])"),
      null,
      { polling: 10, timeout: 20_000 },
    );
  }

  // The event listeners on the widget's window and on every node of its document, by type.
  async function widgetListeners(f) {
    const { frameTree } = await cdp.send("Page.getFrameTree");
    const find = (tree) => tree.frame.url === f.url() ? tree.frame.id : (tree.childFrames || []).map(find).find(Boolean);
    const contextId = contexts.get(find(frameTree));
    if (contextId === undefined) return null;
    const byType = {};
    let total = 0;
    for (const expression of ["window", "document"]) {
      const { result } = await cdp.send("Runtime.evaluate", { expression, contextId });
      const { listeners } = await cdp.send("DOMDebugger.getEventListeners", {
        objectId: result.objectId, depth: expression === "window" ? 0 : -1, pierce: true,
      });
      for (const listener of listeners) {
        byType[listener.type] = (byType[listener.type] || 0) + 1;
        total += 1;
      }
      await cdp.send("Runtime.releaseObject", { objectId: result.objectId });
    }
    return { total, by_type: byType };
  }

  // Objects and bytes per constructor in a heap snapshot of the page's renderer.
  const heapCensus = [];
  async function census(done) {
    const chunks = [];
    const onChunk = ({ chunk }) => chunks.push(chunk);
    cdp.on("HeapProfiler.addHeapSnapshotChunk", onChunk);
    await cdp.send("HeapProfiler.takeHeapSnapshot", { reportProgress: false });
    cdp.off("HeapProfiler.addHeapSnapshotChunk", onChunk);
    const snapshot = JSON.parse(chunks.join(""));
    const fields = snapshot.snapshot.meta.node_fields;
    const types = snapshot.snapshot.meta.node_types[0];
    const [typeAt, nameAt, sizeAt] = ["type", "name", "self_size"].map((f) => fields.indexOf(f));
    const byName = {};
    for (let i = 0; i < snapshot.nodes.length; i += fields.length) {
      const key = `${types[snapshot.nodes[i + typeAt]]}:${snapshot.strings[snapshot.nodes[i + nameAt]]}`.slice(0, 80);
      const entry = (byName[key] ||= [0, 0]);
      entry[0] += 1;
      entry[1] += snapshot.nodes[i + sizeAt];
    }
    heapCensus.push({ calls: done, by_name: byName });
  }

  async function measure(done) {
    const f = frame();
    const heap = () => f.evaluate(() => {
      window.gc && window.gc();
      return performance.memory ? performance.memory.usedJSHeapSize : null;
    });
    const withConsole = await heap();
    // The console's kept messages are the browser's (bounded), not the widget's: cleared before
    // the heap that counts is read.
    await cdp.send("Runtime.discardConsoleEntries");
    const widget = {
      wasm_bytes: await f.evaluate(() => window.wasmBindings ? window.wasmBindings.wasm_memory_bytes() : null),
      js_heap_bytes: await heap(),
      js_heap_with_console_bytes: withConsole,
      console_messages: consoleMessages,
    };
    const { documents, nodes, jsEventListeners } = await cdp.send("Memory.getDOMCounters");
    const live = await f.evaluate(() => window.__soakLive());
    const sample = {
      calls: done, ...widget, documents, nodes, js_event_listeners: jsEventListeners,
      widget_nodes: live.nodes, widget_listeners: await widgetListeners(f),
      widget_timeouts: live.timeouts, widget_intervals: live.intervals,
      widget_channels: live.channels, widget_sockets: live.sockets, at_ms: Date.now(),
    };
    samples.push(sample);
    console.log(JSON.stringify(sample));
    if (process.env.SOAK_HEAP_SNAPSHOTS) await census(done);
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
  // The window: the last 1,500 calls (after a warm-up of 500 in a 2,000-call run); a
  // shorter run compares its last sample with the one a quarter in.
  const from = calls >= 2000 ? calls - 1500 : Math.floor(calls / 400) * 100;
  const first = at(from) || samples[0];
  const last = samples.at(-1);
  const listeners = (s) => (s.widget_listeners ? s.widget_listeners.total : null);
  const result = {
    calls,
    seconds,
    calls_per_second: calls / seconds,
    ms_per_call: (seconds * 1000) / calls,
    window: { from_calls: first.calls, to_calls: last.calls },
    wasm_growth_bytes: last.wasm_bytes - first.wasm_bytes,
    js_heap_growth_bytes: last.js_heap_bytes - first.js_heap_bytes,
    widget_listeners_growth: listeners(last) - listeners(first),
    widget_timers_growth: last.widget_timeouts + last.widget_intervals - first.widget_timeouts - first.widget_intervals,
    widget_channels_growth: last.widget_channels - first.widget_channels,
    widget_sockets_growth: last.widget_sockets - first.widget_sockets,
    samples,
  };
  mkdirSync(path.join(ROOT, "target", "bench"), { recursive: true });
  writeFileSync(path.join(ROOT, "target", "bench", "soak.json"), JSON.stringify(result, null, 2));
  if (heapCensus.length >= 2) {
    // What grew between the middle sample and the last (past the warm-up), largest first.
    const [from, to] = [heapCensus[Math.floor(heapCensus.length / 2)], heapCensus.at(-1)];
    const grown = Object.entries(to.by_name)
      .map(([name, [count, bytes]]) => {
        const [c0, b0] = from.by_name[name] || [0, 0];
        return { name, objects: count - c0, bytes: bytes - b0 };
      })
      .filter((g) => g.bytes !== 0 || g.objects !== 0)
      .sort((a, b) => b.bytes - a.bytes);
    writeFileSync(path.join(ROOT, "target", "bench", "soak-heap.json"),
      JSON.stringify({ from_calls: from.calls, to_calls: to.calls, grown: grown.slice(0, 60) }, null, 2));
    console.log(`heap census, calls ${from.calls} → ${to.calls}:`);
    for (const g of grown.slice(0, 15)) console.log(`  ${g.bytes} B, ${g.objects} objects: ${g.name}`);
  }
  console.log(`soak: ${calls} calls in ${seconds.toFixed(0)} s (${result.ms_per_call.toFixed(0)} ms a call); ` +
    `wasm memory ${samples[0].wasm_bytes} → ${last.wasm_bytes} B; JS heap ${samples[0].js_heap_bytes} → ${last.js_heap_bytes} B. ` +
    `Over calls ${first.calls} → ${last.calls}: wasm memory ${result.wasm_growth_bytes} B, JS heap ${result.js_heap_growth_bytes} B, ` +
    `widget listeners ${listeners(first)} → ${listeners(last)}, timers ` +
    `${first.widget_timeouts + first.widget_intervals} → ${last.widget_timeouts + last.widget_intervals}, ` +
    `channels ${first.widget_channels} → ${last.widget_channels}, sockets ${first.widget_sockets} → ${last.widget_sockets}`);
} finally {
  await browser.close();
  await stack.stop();
}
