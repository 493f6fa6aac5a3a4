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
  // Signed in, Available, in an inbound call; click-to-call has filled the dial pad.
  await page.locator("#message-log li[data-type='init']").first().waitFor();
  if (await adapter.locator(".sign-in").count()) {
    await adapter.locator(".sign-in button[type='submit']").click();
  }
  const menu = adapter.locator("select.status-select");
  await menu.locator("option[value='0']").waitFor({ state: "attached" });
  await menu.selectOption({ label: "Available" });
  await adapter.locator(".outcome", { hasText: "Available" }).waitFor();
  await page.locator("#scenario-agent").fill("101");
  await page.evaluate(() => window.hostEmulator.scenario("inbound_call", { agent_id: 101, number: "+33612345678" }));
  await adapter.locator(".call-panel button.control-answer").click();
  await adapter.locator(".call-panel[data-state='connected']").waitFor();
  await page.getByRole("button", { name: "Call (415) 555-2671", exact: true }).click();
  await adapter.locator(".dial-preview[data-state='valid']").waitFor();
  await page.waitForTimeout(2_500);
  await page.screenshot({ path: out });
  console.log(`screenshot: ${out}`);
} finally {
  await browser.close();
}
