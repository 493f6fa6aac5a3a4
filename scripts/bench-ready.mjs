// Ready-time benchmark of the agent widget: loads the host emulator RUNS times cold (a fresh
// browser context: empty cache) and RUNS times cached (one context, reloaded), and reports, from
// the widget frame's own navigation start to its `adapter-ready` mark (handshake done, first
// screen after it painted), the median and p95 of each. Loopback, headless Chromium.
//
//   trunk build --release && cargo build --release -p adapter-gateway -p adapter-simulator
//   node scripts/bench-ready.mjs [RUNS=30]       (STACK_PROFILE=debug for debug servers)
//
// Writes target/bench/ready.json.
import { chromium } from "@playwright/test";
import { mkdirSync, mkdtempSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";

import { freePort, ROOT, startStack } from "./stack.mjs";

const runs = Number(process.argv[2] || 30);
const stack = await startStack({
  ports: { gateway: await freePort(), simulator: await freePort(), host: await freePort() },
  dataDir: mkdtempSync(path.join(os.tmpdir(), "adapter-ready-")),
  profile: process.env.STACK_PROFILE || "release",
  quiet: true,
});
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  args: ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run"],
});
const origin = new URL(stack.adapterUrl).origin;

/** Loads the host in `page`; the widget frame's timings (ms from its navigation start). */
async function load(page) {
  await page.goto(stack.hostUrl);
  let frame;
  for (let i = 0; i < 2000 && !frame; i++) {
    frame = page.frames().find((f) => f.url().startsWith(origin));
    if (!frame) await page.waitForTimeout(5);
  }
  await frame.waitForFunction(() => performance.getEntriesByName("adapter-ready").length > 0, null, {
    polling: 10,
    timeout: 20_000,
  });
  return frame.evaluate(() => {
    const nav = performance.getEntriesByType("navigation")[0];
    const ready = performance.getEntriesByName("adapter-ready")[0].startTime;
    const wasm = performance.getEntriesByType("resource").find((r) => r.name.endsWith(".wasm"));
    return {
      ready_ms: ready,
      dom_content_loaded_ms: nav ? nav.domContentLoadedEventEnd : null,
      wasm_fetched_ms: wasm ? wasm.responseEnd : null,
      wasm_transfer_bytes: wasm ? wasm.transferSize : null,
    };
  });
}

const stats = (values) => {
  const sorted = [...values].sort((a, b) => a - b);
  const pick = (q) => sorted[Math.min(sorted.length - 1, Math.ceil(q * sorted.length) - 1)];
  return { runs: sorted.length, median_ms: +pick(0.5).toFixed(1), p95_ms: +pick(0.95).toFixed(1), min_ms: +sorted[0].toFixed(1), max_ms: +sorted.at(-1).toFixed(1) };
};

try {
  const cold = [];
  for (let i = 0; i < runs; i++) {
    const context = await browser.newContext();
    cold.push(await load(await context.newPage()));
    await context.close();
  }
  const context = await browser.newContext();
  const page = await context.newPage();
  await load(page); // fills the cache
  const cached = [];
  for (let i = 0; i < runs; i++) cached.push(await load(page));
  await context.close();
  const result = {
    measured: "widget frame navigation start → performance mark adapter-ready",
    cold: stats(cold.map((r) => r.ready_ms)),
    cached: stats(cached.map((r) => r.ready_ms)),
    cold_wasm_transfer_bytes: cold[0].wasm_transfer_bytes,
    samples: { cold, cached },
  };
  mkdirSync(path.join(ROOT, "target", "bench"), { recursive: true });
  writeFileSync(path.join(ROOT, "target", "bench", "ready.json"), JSON.stringify(result, null, 2));
  console.log(`ready: cold median ${result.cold.median_ms} ms, p95 ${result.cold.p95_ms} ms; ` +
    `cached median ${result.cached.median_ms} ms, p95 ${result.cached.p95_ms} ms (${runs} loads each)`);
} finally {
  await browser.close();
  await stack.stop();
}
