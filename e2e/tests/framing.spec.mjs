// A page of an origin that is not an allowed Kustomer origin frames the widget: the browser
// blocks the frame (the gateway's CSP frame-ancestors), and where no CSP is sent (a static host
// that does not set one) the widget refuses the host and posts nothing to it. The host emulator,
// the one allowed origin, runs the widget with no CSP violation.
import http from "node:http";

import { expect, test } from "../fixtures.mjs";

/** The foreign page is served for real on loopback, like the host emulator but on another
 * port, so another origin: a page Playwright fulfils counts as a public one, which Chromium's
 * private network rules stop from framing a loopback page before any CSP is read. */
let foreign;

test.beforeAll(async () => {
  foreign = http.createServer((request, response) => {
    const adapterUrl = new URL(request.url, "http://x").searchParams.get("adapter");
    if (!adapterUrl) {
      response.writeHead(404).end();
      return;
    }
    response.writeHead(200, { "content-type": "text/html; charset=utf-8" });
    response.end(foreignPage(adapterUrl));
  });
  await new Promise((resolve) => foreign.listen(0, "127.0.0.1", resolve));
});

test.afterAll(async () => {
  await new Promise((resolve) => foreign.close(resolve));
});

const foreignOrigin = () => `http://127.0.0.1:${foreign.address().port}`;

/** The foreign page, framing the widget of `stack`. */
const foreignUrl = (stack) => `${foreignOrigin()}/?adapter=${encodeURIComponent(stack.adapterUrl)}`;

/** A page that frames the widget at `adapterUrl` as Kustomer would, naming itself as
 * `parentUrl`, and records every message it receives (`window.received`). */
function foreignPage(adapterUrl) {
  const src = new URL(adapterUrl);
  src.searchParams.set("parentUrl", `${foreignOrigin()}/`);
  src.searchParams.set("id", "ccai-adapter");
  return `<!DOCTYPE html><html><head><title>foreign host</title></head><body>
<script>
  window.received = [];
  addEventListener("message", (event) => window.received.push({ origin: event.origin, data: String(event.data) }));
</script>
<iframe id="adapter-frame" name="ccai-adapter" src="${src}"></iframe>
</body></html>`;
}

test("a page of a non-allowed origin that frames the widget is blocked by the CSP", async ({ page, stack }) => {
  const refused = page.waitForEvent("console", {
    predicate: (message) => /violates the following Content Security Policy directive: "frame-ancestors /.test(message.text()),
  });
  const widgetAnswer = page.waitForResponse((response) => response.url().startsWith(stack.adapterUrl));
  await page.goto(foreignUrl(stack));
  const answer = await widgetAnswer;
  expect(answer.headers()["content-security-policy"]).toContain(
    `frame-ancestors ${new URL(stack.hostUrl).origin}`,
  );
  // Chromium says why it did not show the frame.
  expect((await refused).text()).toContain(new URL(stack.adapterUrl).origin);
  // Nothing of the widget ran: no frame shows it, and the foreign page got nothing.
  for (const frame of page.frames()) {
    expect(await frame.locator("main.adapter").count()).toBe(0);
  }
  expect(await page.evaluate(() => window.received)).toEqual([]);
});

test("without a CSP, the widget refuses a non-allowed host and posts nothing to it", async ({ page, stack }) => {
  // The widget's page as a static host that sends no CSP would serve it: the allowed origins
  // are still in the page, and the widget checks its host against them.
  await page.route(`${stack.adapterUrl}?**`, async (route) => {
    const response = await route.fetch();
    const headers = { ...response.headers() };
    delete headers["content-security-policy"];
    await route.fulfill({ response, headers });
  });
  await page.goto(foreignUrl(stack));
  const adapter = page.frameLocator("#adapter-frame");
  await expect(adapter.locator(".notice-host-refused")).toHaveText(
    "This page is not an allowed Kustomer address, so the adapter does not talk to it. Ask your administrator to add it to the allowed Kustomer origins.",
  );
  await expect(adapter.locator(".notice-host-refused")).toHaveAttribute("title", new RegExp(`${foreignOrigin()} is not one of the allowed`));
  await expect(adapter.locator(".sign-in")).toContainText("Open the adapter inside Kustomer to sign in");
  // Messages from one window arrive in order: once a marker posted from the widget's frame
  // now has arrived, anything the widget posted earlier has too.
  const frame = page.frames().find((f) => f.url().startsWith(new URL(stack.adapterUrl).origin));
  await frame.evaluate(() => parent.postMessage("marker", "*"));
  await page.waitForFunction(() => window.received.some((m) => m.data === "marker"));
  expect(await page.evaluate(() => window.received.map((m) => m.data))).toEqual(["marker"]);
});

test("the allowed host emulator runs the widget and its settings page with no CSP violation", async ({ host, page }) => {
  const violations = [];
  page.on("console", (message) => {
    if (/Content Security Policy|Refused to/i.test(message.text())) violations.push(message.text());
  });
  await host.goto();
  await host.signIn();
  await host.setAvailable();
  await expect(host.connectionLine).toHaveAttribute("data-state", "connected");
  await host.openSettings();
  await host.closeSettings();
  expect(violations).toEqual([]);
});
