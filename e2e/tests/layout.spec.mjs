// The agent widget at Kustomer's sidebar size, the caller's name, and the admins' settings page:
// every state of the widget (signed out, idle, ringing, in a call, wrap-up with a next status,
// another tab leading) fits its 320 × 480 frame without scrolling, with the product name and the
// next status whole, in English and French; the caller Kustomer knows is shown by name and
// company; the settings page opens from the host's settings entry and saves; axe finds nothing
// in either page in either language.
import AxeBuilder from "@axe-core/playwright";

import { AGENT_ID, driveStates, KNOWN_CALLER, openSettings, STATES } from "../../scripts/widget-states.mjs";
import { expect, test } from "../fixtures.mjs";
import { sim } from "../support.mjs";
import { settleAndReset } from "./hygiene.mjs";

test.beforeEach(async ({ stack }, testInfo) => {
  await settleAndReset(stack, testInfo);
});

/** What does not fit in the adapter's frame of `page`, as sentences (none when all fits). */
async function misfits(page, origin) {
  const frame = page.frames().find((f) => f.url().startsWith(origin) && !f.url().includes("/settings/"));
  return frame.evaluate(() => {
    const problems = [];
    const doc = document.documentElement;
    if (window.innerWidth !== 320 || window.innerHeight !== 480) problems.push(`frame ${window.innerWidth}×${window.innerHeight}`);
    if (doc.scrollHeight > doc.clientHeight + 1) problems.push(`page scrolls (${doc.scrollHeight} px)`);
    const body = document.querySelector(".adapter-body");
    if (body.scrollHeight > body.clientHeight + 1) problems.push(`body scrolls (${body.scrollHeight} > ${body.clientHeight} px)`);
    const clipped = (selector) => {
      const element = document.querySelector(selector);
      if (!element || element.closest("[hidden]")) return;
      const box = element.getBoundingClientRect();
      if (element.scrollWidth > element.clientWidth + 1 || box.right > window.innerWidth + 1) {
        problems.push(`${selector} is cut (${element.textContent.trim()})`);
      }
    };
    // No line says what the status menu already shows ("Connected", "Status: Available").
    for (const quiet of document.querySelectorAll(".connection-line[data-state='connected'], .outcome-done.visually-hidden")) {
      if (quiet.getBoundingClientRect().width > 1) problems.push(`"${quiet.textContent.trim()}" is shown`);
    }
    clipped(".adapter-name");
    clipped(".next-status-name");
    clipped(".status-select");
    return problems;
  });
}

for (const lang of ["en-US", "fr-FR"]) {
  test(`every state fits 320 × 480 without scrolling, and axe finds nothing (${lang})`, async ({ browser, stack }) => {
    test.setTimeout(120_000);
    const context = await browser.newContext({ locale: lang, viewport: { width: 1280, height: 720 } });
    const page = await context.newPage();
    const origin = new URL(stack.adapterUrl).origin;
    const seen = [];
    await driveStates({
      page,
      stack,
      lang,
      visit: async (state, shown) => {
        seen.push(state);
        expect(await misfits(shown, origin), state).toEqual([]);
        // The dial pad shows only when Call can be used.
        const pad = shown.frameLocator("#adapter-frame").locator(".dial-pad-slot");
        if (state === "idle") await expect(pad).toBeVisible();
        else await expect(pad).toBeHidden();
        if (state === "idle" || state === "in-call") {
          const results = await new AxeBuilder({ page: shown }).include("#adapter-frame").analyze();
          expect(results.violations.map((v) => `${state}: ${v.id}: ${v.help}`)).toEqual([]);
        }
      },
    });
    expect(seen).toEqual(STATES);
    await context.close();
  });
}

test("the caller's name and company show when Kustomer knows the number, else the number", async ({ host }) => {
  await host.goto();
  await host.signIn();
  await host.setAvailable();
  // Not the customer open in the host (Grace): the adapter looks the number up through the host.
  await host.offerInboundCall(AGENT_ID, KNOWN_CALLER.number);
  await expect(host.callPanel.locator(".call-who")).toHaveText(KNOWN_CALLER.name);
  await expect(host.callPanel.locator(".call-company")).toHaveText(KNOWN_CALLER.company);
  await expect(host.callPanel.locator(".call-number")).toHaveText(KNOWN_CALLER.number);
  await expect(host.messageLog.locator("li[data-type='api_request']", { hasText: "customers/phone" })).toHaveCount(1);
  await host.control("answer").click();
  await host.control("end").click();
  await expect(host.callPanel).toHaveAttribute("data-state", "wrapup");
  await expect.poll(async () => (await sim(host.stack, "GET", "/_sim/state")).ccai.agents.find((a) => a.id === AGENT_ID).status_id, {
    timeout: 20_000,
  }).toBe(0);
  // A number no customer has: the number itself.
  await host.offerInboundCall(AGENT_ID, "+12025550199");
  await expect(host.callPanel).toHaveAttribute("data-state", "ringing");
  await expect(host.callPanel.locator(".call-who")).toHaveText("+12025550199");
  await expect(host.callPanel.locator(".call-company")).toBeHidden();
});

test("the settings page opens from the host's settings entry, saves the CRM settings, and axe finds nothing in either language", async ({
  page,
  stack,
}) => {
  const settings = await openSettings(page, stack, "en-US");
  // None of it is in the agent widget.
  await expect(page.frameLocator("#adapter-frame").locator(".inheritance-settings, .crm-settings")).toHaveCount(0);
  await expect(settings.locator("h1")).toHaveText("CCAI Platform adapter settings");
  const crm = settings.locator(".crm-settings");
  await crm.locator("input[name='create_abandoned']").uncheck();
  await crm.locator("textarea[name='mapping']").fill("order_id = orderIdStr");
  await crm.locator("button[type='submit']").click();
  await expect(crm.locator(".settings-result")).toHaveText("Saved.");
  // The list is shown, empty ("None.") or not: the stack is shared, and agent.spec's
  // click-to-call is placed from the host emulator's Grace Hopper conversation, which the
  // simulated Kustomer org does not have, so that call's CRM writes are dead letters
  // ("conversation not found").
  await expect(settings.locator(".dead-letters")).toBeVisible();
  let results = await new AxeBuilder({ page }).include("#settings-frame").analyze();
  expect(results.violations.map((v) => `en: ${v.id}: ${v.help}`)).toEqual([]);

  await page.locator("#host-lang").selectOption("fr-FR");
  await expect(settings.locator("h1")).toHaveText("Réglages de l’adaptateur CCAI Platform");
  await expect(crm.locator("input[name='create_abandoned']")).not.toBeChecked();
  await expect(crm.locator("textarea[name='mapping']")).toHaveValue("order_id = orderIdStr");
  results = await new AxeBuilder({ page }).include("#settings-frame").analyze();
  expect(results.violations.map((v) => `fr: ${v.id}: ${v.help}`)).toEqual([]);

  // Put the organisation's settings back for the other tests of this stack.
  await crm.locator("input[name='create_abandoned']").check();
  await crm.locator("textarea[name='mapping']").fill("");
  await crm.locator("button[type='submit']").click();
  await expect(crm.locator(".settings-result")).toHaveText("Enregistré.");
});
