// The host bridge end to end: handshake, click-to-call into the dial pad, origin pinning
// against a hostile frame, resize, standalone mode, and click-to-call latency.
import { expect, test } from "../fixtures.mjs";
import { recordLatencies } from "../support.mjs";

test("the host emulator logs the handshake both ways", async ({ host }) => {
  await host.goto();
  await host.handshake();
  await expect(host.messageLog.locator("li[data-type='ready']")).toHaveCount(1);
  await host.openDiagnostics();
  await expect(host.diagnostics).toContainText("host bridge: postMessage pinned to " + new URL(host.stack.hostUrl).origin);
  await expect(host.diagnostics).toContainText("handshake: host user kus-user-1 (ada.lovelace@example.com)");
});

const clickToCallCases = [
  ["(415) 555-2671", "Will dial +14155552671", "For Grace Hopper"],
  ["212-555-0143 ext. 204", "Will dial +12125550143 ext. 204", "For Grace Hopper"],
  ["+33 6 12 34 56 78", "Will dial +33612345678", "For Amélie Poulain"],
  ["0033 1 23 45 67 89", "Will dial +33123456789", "For Amélie Poulain"],
  ["+44 (0)20 7946 0958", "Will dial +442079460958", "For Arthur Dent"],
  ["555-01AB", "“A” cannot be part of a phone number.", "For Broken Record Ltd"],
];

test("clicking a phone icon puts the normalised number in the dial pad, and never dials", async ({ host }) => {
  await host.goto();
  await host.handshake();
  for (const [number, preview, forWhom] of clickToCallCases) {
    await host.phoneIcon(number).click();
    await expect(host.dialInput).toHaveValue(number);
    await expect(host.dialPreview).toHaveText(preview);
    await expect(host.dialFor).toHaveText(forWhom);
  }
  await expect(host.callButton).toBeDisabled();
  await expect(host.adapter.locator("#call-blocked")).toHaveText("Sign in to the contact center to place calls.");
  await expect(host.messageLog.locator("li[data-type='click_to_call']")).toHaveCount(clickToCallCases.length);
});

test("the dial pad takes typing and keys, and the customer's numbers are one click away", async ({ host, page }) => {
  await host.goto();
  // The dial pad shows when Call can be used: signed in.
  await host.signIn();
  await host.dialInput.fill("4155552671");
  await expect(host.dialPreview).toHaveText("Will dial +14155552671");
  await host.dialInput.press("Backspace");
  // Nine digits fit no US numbering plan (libphonenumber's lengths for +1 are 7 and 10).
  await expect(host.dialPreview).toHaveText("Not a valid US number.");
  await host.adapter.locator("button.clear-number").click();
  for (const key of "2125550143") await host.adapter.locator("button.key", { hasText: key }).first().click();
  await expect(host.dialPreview).toHaveText("Will dial +12125550143");
  await host.adapter.getByRole("button", { name: "(415) 555-2671 (mobile)" }).click();
  await expect(host.dialInput).toHaveValue("(415) 555-2671");
  await expect(host.dialFor).toHaveText("For Grace Hopper");
  // Selecting another customer in the host changes the numbers on offer.
  await page.getByRole("button", { name: "Arthur Dent" }).click();
  await expect(host.adapter.getByRole("button", { name: "+44 (0)20 7946 0958 (work)" })).toBeVisible();
});

test("the host's language and Kustomer status reach the adapter", async ({ host }) => {
  await host.goto();
  await host.handshake();
  await host.langMenu.selectOption("fr-FR");
  await expect(host.adapter.locator(".dial-title")).toHaveText("Numéro à appeler");
  await host.statusMenu.selectOption({ label: "Lunch" });
  await host.openDiagnostics();
  await expect(host.diagnostics).toContainText("Kustomer status: Lunch (Unavailable)");
});

test("a hostile frame of another origin changes nothing", async ({ host }) => {
  await host.goto("?hostile=1");
  await host.handshake();
  await expect(host.messageLog.locator("li[data-type='hostile-frame-done']")).toHaveCount(1);
  await host.openDiagnostics();
  await expect(host.diagnostics).toContainText("not from the host (last from origin \"" + host.stack.simulatorUrl + "\")");
  await expect(host.dialInput).toHaveValue("");
  await expect(host.diagnostics).not.toContainText("evil@example.com");
  await expect(host.diagnostics).not.toContainText("Kustomer status: Offline");
  await expect(host.adapter.locator(".dial-title")).toHaveText("Number to call");
});

test("minimising asks the host to shrink the frame, and click-to-call brings it back", async ({ host }) => {
  await host.goto();
  await host.handshake();
  await host.minimiseToggle.click();
  await expect(host.dock).toHaveCSS("height", "48px");
  await host.phoneIcon("(415) 555-2671").click();
  await expect(host.body).toBeVisible();
  await expect(host.dock).toHaveCSS("height", "480px");
  await expect(host.messageLog.locator("li[data-type='open']")).toHaveCount(1);
});

test("opened outside Kustomer, the adapter runs standalone and says so", async ({ page, stack }) => {
  await page.goto(stack.adapterUrl);
  await expect(page.locator(".notice-standalone")).toContainText("Running outside Kustomer");
});

test("click-to-call fill latency over 200 clicks (host post to number in the DOM)", async ({ host }) => {
  await host.goto();
  await host.handshake();
  const frame = host.adapterFrame();
  await frame.evaluate(() => {
    const preview = document.querySelector(".dial-preview");
    window.__previewChanges = [];
    new MutationObserver(() => window.__previewChanges.push(performance.timeOrigin + performance.now())).observe(
      preview,
      { characterData: true, childList: true, subtree: true },
    );
  });
  const numbers = ["(415) 555-2671", "+33 6 12 34 56 78"];
  const latencies = [];
  for (let i = 0; i < 200; i++) {
    const before = await frame.evaluate(() => window.__previewChanges.length);
    const sentAt = await host.page.evaluate(
      ([number]) => {
        const grace = { id: "cus-grace", name: "Grace Hopper" };
        return window.hostEmulator.send("click_to_call", { phone: number, customer: grace }).at;
      },
      [numbers[i % 2]],
    );
    await frame.waitForFunction((n) => window.__previewChanges.length > n, before);
    const seenAt = await frame.evaluate((n) => window.__previewChanges[n], before);
    latencies.push(seenAt - sentAt);
    // Time is the subject: paced under the bridge's flood limit (50 messages per second).
    await host.page.waitForTimeout(25);
  }
  // A benchmark: recorded in e2e/results/, never a pass/fail budget on a shared machine.
  recordLatencies("click-to-call-latency", "clicks", latencies);
});
