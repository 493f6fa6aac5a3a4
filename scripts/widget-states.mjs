// The agent widget's states, driven one after the other in the host emulator of a running stack:
// signed out, idle, ringing (a caller Kustomer knows), in a call with its controls, wrap-up with a
// next status, and another tab leading. `visit(state, page)` runs in each state, with the page
// whose adapter shows it. Used by scripts/screenshot.mjs (docs/ screenshots) and by
// e2e/tests/layout.spec.mjs (each state fits 320 × 480 without scrolling; axe).

export const STATES = ["signed-out", "idle", "ringing", "in-call", "wrap-up", "other-tab"];

/** The demo's agent (Ada, 101) and a number the host's Kustomer knows (Amélie Poulain's). */
export const AGENT_ID = 101;
export const KNOWN_CALLER = { number: "+33612345678", name: "Amélie Poulain", company: "Café des 2 Moulins" };

async function openHost(page, stack, lang) {
  await page.goto(stack.hostUrl);
  await page.locator("#message-log li[data-type='init']").first().waitFor();
  await page.locator("#host-lang").selectOption(lang);
  const adapter = page.frameLocator("#adapter-frame");
  await adapter.locator(`html[lang='${lang.slice(0, 2)}']`).waitFor({ state: "attached" });
  return adapter;
}

/**
 * Drives the states in `lang` ("en-US" or "fr-FR") with a fresh browser context's `page`;
 * `stack` is the running stack (scripts/stack.mjs). Leaves no call behind: the wrap-up ends at
 * the end.
 */
export async function driveStates({ page, stack, lang, visit }) {
  const adapter = await openHost(page, stack, lang);
  await adapter.locator(".sign-in").waitFor();
  await adapter.locator(".connection-line[data-state='connected']").waitFor({ state: "attached", timeout: 20_000 });
  await visit("signed-out", page);

  await adapter.locator(".sign-in input[name='email']").waitFor();
  await adapter.locator(".sign-in button[type='submit']").click();
  const menu = adapter.locator("select.status-select");
  await menu.locator("option[value='0']").waitFor({ state: "attached" });
  await menu.selectOption("0");
  await adapter.locator(".outcome-done").waitFor({ state: "attached" });
  await adapter.locator(".dial-pad-slot:not([hidden])").waitFor();
  // A browser closed just before (an earlier run) counts until the gateway sees its stream end.
  await adapter.locator(".notice-other-browser").waitFor({ state: "hidden", timeout: 30_000 });
  await visit("idle", page);

  const offered = await page.evaluate(
    ([agent, number]) => window.hostEmulator.scenario("inbound_call", { agent_id: agent, number }),
    [AGENT_ID, KNOWN_CALLER.number],
  );
  if (offered.error) throw new Error(`inbound call refused: ${offered.error}`);
  const panel = adapter.locator(".call-panel");
  await adapter.locator(".call-panel[data-state='ringing']").waitFor();
  await panel.locator(".call-who", { hasText: KNOWN_CALLER.name }).waitFor();
  await visit("ringing", page);

  await panel.locator("button.control-answer").click();
  await adapter.locator(".call-panel[data-state='connected']").waitFor();
  await panel.locator("button.control-hold").waitFor();
  await visit("in-call", page);

  await menu.selectOption("-2");
  await adapter.locator(".next-status:not([hidden])").waitFor();
  await panel.locator("button.control-end").click();
  await adapter.locator(".call-panel[data-state='wrapup']").waitFor();
  await visit("wrap-up", page);

  const other = await page.context().newPage();
  try {
    const otherAdapter = await openHost(other, stack, lang);
    await otherAdapter.locator(".notice-other-tab").waitFor();
    await visit("other-tab", other);
  } finally {
    await other.close();
    // Wrap-up ends now rather than on the simulator's timer: nothing is left for what follows.
    await fetch(`${stack.simulatorUrl}/_sim/calls/${offered.id}/wrap_up_done`, { method: "POST" });
  }
}

/** Opens the adapter's settings page from the host's settings entry, in `lang`. */
export async function openSettings(page, stack, lang) {
  const adapter = await openHost(page, stack, lang);
  // The settings page uses the session the admin opened in the widget.
  const menu = adapter.locator("select.status-select");
  const signIn = adapter.locator(".sign-in button[type='submit']");
  // Both are in the page, one hidden: whichever shows first.
  await menu.or(signIn).filter({ visible: true }).first().waitFor();
  if (await signIn.isVisible()) await signIn.click();
  await menu.waitFor();
  await page.locator("#settings-open").click();
  const settings = page.frameLocator("#settings-frame");
  await settings.locator(`html[lang='${lang.slice(0, 2)}']`).waitFor({ state: "attached" });
  await settings.locator(".inheritance-settings tr[data-kustomer-status='rs-lunch']").waitFor();
  await settings.locator(".dead-letters .queue-counts").waitFor();
  return settings;
}
