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
  const adapter = page.frameLocator("#adapter-frame");
  await adapter.locator(".connection-line[data-state='connected']").waitFor({ timeout: 15_000 });
  // Show click-to-call: the phone icon beside a number fills the adapter's dial pad.
  await page.getByRole("button", { name: "Call (415) 555-2671", exact: true }).click();
  await adapter.locator(".dial-preview[data-state='valid']").waitFor();
  await page.screenshot({ path: out });
  console.log(`screenshot: ${out}`);
} finally {
  await browser.close();
}
