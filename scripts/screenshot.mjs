// Refreshes the widget's screenshots in docs/: each state of the agent widget at Kustomer's
// sidebar size (320 × 480) and the admins' settings page, in English and French, from a stack
// of its own (the built dist/ and the debug gateway and simulator, as the end-to-end tests run).
//
//   trunk build --release && cargo build -p adapter-gateway -p adapter-simulator
//   node scripts/screenshot.mjs [output folder]          (default docs/screenshots)
import { chromium } from "@playwright/test";
import { mkdirSync, mkdtempSync } from "node:fs";
import os from "node:os";
import path from "node:path";

import { freePort, ROOT, startStack } from "./stack.mjs";
import { driveStates, openSettings } from "./widget-states.mjs";

const out = path.resolve(process.argv[2] || path.join(ROOT, "docs", "screenshots"));
mkdirSync(out, { recursive: true });
const stack = await startStack({
  ports: { gateway: await freePort(), simulator: await freePort(), host: await freePort() },
  dataDir: mkdtempSync(path.join(os.tmpdir(), "adapter-screenshots-")),
  profile: process.env.STACK_PROFILE || "debug",
  quiet: true,
});
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  args: ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run"],
});
const written = [];
try {
  for (const lang of ["en-US", "fr-FR"]) {
    const short = lang.slice(0, 2);
    const context = await browser.newContext({ viewport: { width: 1280, height: 720 }, locale: lang, reducedMotion: "reduce" });
    const page = await context.newPage();
    await driveStates({
      page,
      stack,
      lang,
      visit: async (state, shown) => {
        const file = path.join(out, `adapter-${state}-${short}.png`);
        await shown.locator(".adapter-dock").screenshot({ path: file, animations: "disabled" });
        written.push(file);
      },
    });
    await context.close();
    const admin = await browser.newContext({ viewport: { width: 1280, height: 800 }, locale: lang, reducedMotion: "reduce" });
    const adminPage = await admin.newPage();
    await openSettings(adminPage, stack, lang);
    const file = path.join(out, `settings-page-${short}.png`);
    await adminPage.locator("#settings-dialog").screenshot({ path: file, animations: "disabled" });
    written.push(file);
    await admin.close();
  }
  for (const file of written) console.log(`screenshot: ${path.relative(ROOT, file)}`);
} finally {
  await browser.close();
  await stack.stop();
}
