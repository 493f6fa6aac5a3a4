// Refreshes the README's screenshot from a running demo:
//   node scripts/screenshot.mjs [host emulator URL] [output PNG]
import { chromium } from "@playwright/test";

const url = process.argv[2] || "http://127.0.0.1:8720/";
const out = process.argv[3] || "docs/screenshot.png";
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  args: ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run"],
});
try {
  const page = await browser.newPage({ viewport: { width: 1100, height: 640 }, locale: "en-US" });
  await page.goto(url);
  const line = page.frameLocator("#adapter-frame").locator(".connection-line[data-state='connected']");
  await line.waitFor({ timeout: 15_000 });
  await page.screenshot({ path: out });
  console.log(`screenshot: ${out}`);
} finally {
  await browser.close();
}
