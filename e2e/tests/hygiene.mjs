// Test hygiene for the widget specs: ends every call and chat the simulator still has (the
// customer hangs up, wrap-up ends), so that the gateway's view of the agent holds no call from an
// earlier test; `/_sim/reset` alone forgets them in the simulator but not at the gateway.
import { sim } from "../support.mjs";

export async function endEveryCall(stack) {
  const sessions = (await sim(stack, "GET", "/_sim/sessions")) || [];
  for (const session of sessions) {
    // 409: the call was already past that step (it ended on its own meanwhile).
    await sim(stack, "POST", `/_sim/calls/${session.id}/customer_hang_up`, undefined, { accept: [409] });
    await sim(stack, "POST", `/_sim/calls/${session.id}/wrap_up_done`, undefined, { accept: [409] });
  }
  // The session events reach the gateway (and its stream) shortly after.
  if (sessions.length) await new Promise((resolve) => setTimeout(resolve, 500));
}
