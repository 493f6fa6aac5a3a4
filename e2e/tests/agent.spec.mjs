// The agent's day through the gateway: sign in as the Kustomer user, change status from the
// menu and see the simulator receive it, click a phone icon and Call, and the simulator records
// the call with that number and the agent's email.
import { expect, test } from "../fixtures.mjs";
import { recordLatencies, sim, statusRequestTimes } from "../support.mjs";
import { settleAndReset } from "./hygiene.mjs";

async function simState(stack) {
  return (await sim(stack, "GET", "/_sim/state")).ccai;
}

test.beforeEach(async ({ stack }, testInfo) => {
  // A call left by an earlier test would hide the dial pad (it shows when Call can be used).
  await settleAndReset(stack, testInfo);
});

test("sign-in is refused for another email than the Kustomer user's, with the reason", async ({ host }) => {
  await host.goto();
  await host.handshake();
  await expect(host.emailInput).toHaveValue("ada.lovelace@example.com");
  await host.emailInput.fill("grace.hopper@example.com");
  await host.signInButton.click();
  await expect(host.signInError).toContainText("You are signed in to Kustomer as ada.lovelace@example.com");
  await expect(host.statusSelect).toBeHidden();
});

test("sign in, set a status from the menu, and the simulator receives it", async ({ host, stack }) => {
  await host.goto();
  await host.signIn();
  // Ada starts Offline in the simulator; the menu shows the tenant's statuses, system ones disabled.
  await expect(host.statusSelect.locator("option[value='-7']")).toBeDisabled();
  await host.setAvailable();
  const state = await simState(stack);
  expect(state.status_requests).toContainEqual({ status: "Available", agent_ids: [101] });
  expect(state.agents.find((a) => a.id === 101).status_id).toBe(0);
  await expect(host.statusSelect).toHaveValue("0");
});

test("click a phone icon, click Call, and the simulator places that call for the agent", async ({ host, stack }) => {
  await host.goto();
  await host.signIn();
  await host.setAvailable();
  await host.phoneIcon("(415) 555-2671").click();
  await expect(host.callButton).toBeEnabled();
  await host.callButton.click();
  await expect(host.outcome).toHaveText("Calling +14155552671");
  const calls = (await simState(stack)).calls;
  expect(calls).toHaveLength(1);
  expect(calls[0]).toMatchObject({
    end_user_number: "+14155552671",
    agent_email: "ada.lovelace@example.com",
    call_type: "Voice Outbound (API)",
  });
  // The call shows in the panel, from the gateway's event stream.
  await expect(host.callPanel).toContainText("+14155552671");
});

test("Call while not Available says why in the agent's words", async ({ host }) => {
  await host.goto();
  await host.signIn();
  await host.phoneIcon("(415) 555-2671").click();
  await host.callButton.click();
  await expect(host.outcome).toContainText("set your status to Available");
});

test("a reload keeps the agent signed in, and sign-out ends it", async ({ host }) => {
  await host.goto();
  await host.signIn();
  await host.reload();
  await expect(host.statusSelect).toBeVisible();
  await expect(host.connectionLine).toHaveAttribute("data-state", "connected");
  await host.adapter.locator("button.sign-out").click();
  await expect(host.signInButton).toBeVisible();
  await host.reload();
  await expect(host.signInButton).toBeVisible();
});

test("status change latency over 100 changes (menu change to the simulator's agent_statuses call)", async ({
  host,
  stack,
}) => {
  await host.goto();
  await host.signIn();
  const frame = host.adapterFrame();
  const before = (await simState(stack)).status_requests.length;
  const firstRequest = (await sim(stack, "GET", "/_sim/state")).requests.length;
  const changes = [];
  for (let i = 0; i < 100; i++) {
    const [id, name] = i % 2 === 0 ? ["0", "Available"] : ["-2", "Break"];
    const changedAt = await frame.evaluate((value) => {
      const select = document.querySelector("select.status-select");
      const at = performance.timeOrigin + performance.now();
      select.value = value;
      select.dispatchEvent(new Event("change", { bubbles: true }));
      return at;
    }, id);
    await expect(host.outcome).toHaveText(`Status: ${name}`);
    changes.push(changedAt);
  }
  const state = await simState(stack);
  expect(state.status_requests.length - before).toBe(100);
  const received = await statusRequestTimes(stack, firstRequest);
  expect(received).toHaveLength(100);
  // A benchmark: recorded in e2e/results/, never a pass/fail budget on a shared machine.
  recordLatencies("status-change-latency", "changes", received.map((at, i) => at - changes[i]));
});

test("the contact center failing or answering garbage is said plainly, and nothing stays stuck", async ({
  host,
  stack,
}) => {
  await host.goto();
  await host.signIn();
  // The platform answers 500 to the next requests: the change fails with a reason.
  await sim(stack, "POST", "/_sim/faults", { latency_ms: 0, status: 500, count: 10, drop: 0 });
  await host.statusSelect.selectOption({ label: "Break" });
  await expect(host.adapter.locator(".outcome-failed")).toContainText("The contact center cannot be reached; try again in a moment.");
  await expect(host.statusSelect).toBeEnabled();
  // The platform recovers: the same change goes through.
  await sim(stack, "POST", "/_sim/reset");
  await host.statusSelect.selectOption({ label: "Break" });
  await expect(host.outcome).toHaveText("Status: Break");
});
