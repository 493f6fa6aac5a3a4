// Test hygiene for the specs sharing one stack: every call and chat the simulator still has is
// ended (the customer hangs up, wrap-up ends) and the gateway has heard of it, so that its view
// of the agent holds no call from an earlier test; and before the simulator is reset, the
// gateway's CRM sync has finished writing those calls to Kustomer. `/_sim/reset` alone forgets
// the calls in the simulator but not at the gateway, and wipes Kustomer under CRM work still
// running (which then dead-letters, "conversation not found").
import { expect } from "../fixtures.mjs";
import { adminSession, sim } from "../support.mjs";

const LIVE = new Set(["selecting", "assigned", "ringing", "connected", "on_hold", "wrap_up"]);

/** How long the gateway may take to write an earlier test's calls to Kustomer. */
const DRAIN_DEADLINE_MS = 45_000;

/**
 * Ends every live call and chat, and waits until the simulator delivered every webhook (the
 * gateway answers one once its events are in its log and stream).
 */
export async function endEveryCall(stack) {
  const sessions = (await sim(stack, "GET", "/_sim/sessions")) || [];
  for (const session of sessions.filter((s) => LIVE.has(s.status))) {
    // 409: the call was already past that step (it ended on its own meanwhile).
    await sim(stack, "POST", `/_sim/calls/${session.id}/customer_hang_up`, undefined, { accept: [409] });
    await sim(stack, "POST", `/_sim/calls/${session.id}/wrap_up_done`, undefined, { accept: [409] });
  }
  await expect
    .poll(
      async () => {
        const state = await sim(stack, "GET", "/_sim/state");
        return {
          live: state.ccai.sessions.filter((s) => LIVE.has(s.status)).map((s) => `${s.id} ${s.status}`),
          pending: state.webhooks.filter((w) => w.state === "pending").map((w) => `${w.event_type} ${w.session_id}`),
        };
      },
      { message: "every call ended and its webhooks delivered to the gateway", timeout: 30_000 },
    )
    .toEqual({ live: [], pending: [] });
}

/**
 * Waits until the gateway's CRM sync has nothing left to do: no session event waiting to be
 * planned, no Kustomer operation pending (as the settings page's outbox figures show them).
 * Dead letters and what is held behind them stay, and are not waited for.
 */
export async function drainCrm(stack) {
  const admin = await adminSession(stack);
  await expect
    .poll(
      async () => {
        const outbox = await admin.request("GET", "/crm/outbox");
        return { inbox: outbox.inbox, pending: outbox.pending };
      },
      { message: "the gateway's CRM outbox drained", timeout: DRAIN_DEADLINE_MS },
    )
    .toEqual({ inbox: 0, pending: 0 });
}

/**
 * Between tests: every call ended, the gateway's CRM work on them finished, then the simulator
 * reset. Gives the hook the time the drain may take on top of the test's own.
 */
export async function settleAndReset(stack, testInfo) {
  testInfo?.setTimeout(testInfo.timeout + DRAIN_DEADLINE_MS + 30_000);
  await endEveryCall(stack);
  await drainCrm(stack);
  await sim(stack, "POST", "/_sim/reset");
}
