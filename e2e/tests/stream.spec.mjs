// The widget's event stream as the browser sees it: the session token never travels in its URL
// (it goes in the first message), and a stream refused as one too many for the agent is
// explained to the agent, in their language, instead of being retried at once.
import { mkdtempSync } from "node:fs";
import os from "node:os";
import path from "node:path";

import { freePort, startStack } from "../../scripts/stack.mjs";
import { expect, test } from "../fixtures.mjs";
import { HostPage } from "../pages/host.mjs";

/** The session the widget keeps in its frame's localStorage. */
async function storedSession(host) {
  return JSON.parse(await host.adapterFrame().evaluate(() => localStorage.getItem("ccai-adapter.session")));
}

test("the session token never travels in the stream's URL: the first message carries it", async ({ host, page }) => {
  const sockets = [];
  page.on("websocket", (socket) => {
    const seen = { url: socket.url(), sent: [] };
    socket.on("framesent", (frame) => seen.sent.push(String(frame.payload)));
    sockets.push(seen);
  });
  await host.goto();
  await host.signIn();
  await expect(host.connectionLine).toHaveAttribute("data-state", "connected");
  const { token } = await storedSession(host);
  const streams = sockets.filter((s) => s.url.includes("/api/v1/events"));
  expect(streams.length).toBeGreaterThan(0);
  for (const stream of streams) {
    expect(new URL(stream.url).search).toBe("");
    expect(stream.url).not.toContain(token);
  }
  const stream = streams.at(-1);
  await expect.poll(() => stream.sent.length).toBeGreaterThan(0);
  const auth = JSON.parse(stream.sent[0]);
  expect(auth).toMatchObject({ type: "auth", token });
  expect(auth.browser).toMatch(/^[0-9a-f]+$/);
});

test.describe("with one stream allowed per agent", () => {
  let stack;

  test.beforeAll(async () => {
    stack = await startStack({
      ports: { gateway: await freePort(), simulator: await freePort(), host: await freePort() },
      dataDir: mkdtempSync(path.join(os.tmpdir(), "adapter-e2e-streams-")),
      profile: process.env.STACK_PROFILE || "debug",
      quiet: !process.env.STACK_LOGS,
      gatewayArgs: ["--max-streams-per-agent", "1"],
    });
  });

  test.afterAll(async () => {
    await stack?.stop();
  });

  test("a second tab's stream is refused as one too many, and the widget says so and waits", async ({ context }) => {
    const first = new HostPage(await context.newPage(), stack);
    await first.goto();
    await first.signIn();
    await expect(first.connectionLine).toHaveAttribute("data-state", "connected");

    // The second tab signs in from the kept session; the agent's one stream is the first tab's.
    const second = new HostPage(await context.newPage(), stack);
    await second.goto();
    const notice = second.adapter.locator(".notice-too-many-streams");
    await expect(notice).toHaveText(
      "Too many adapter windows are open for you (or on this network): live updates are paused here. Close the tabs you do not use; this one tries again in a minute.",
    );
    await second.openDiagnostics();
    const refusal = second.diagnostics.locator("li", { hasText: "closed (4029" });
    await expect(refusal).toHaveCount(1);
    const waitSeconds = Number((await refusal.textContent()).match(/trying again in (\d+) s/)[1]);
    expect(waitSeconds).toBeGreaterThanOrEqual(60);
    // Said in the host's language too.
    await second.langMenu.selectOption("fr-FR");
    await expect(notice).toHaveText(
      "Trop de fenêtres de l’adaptateur sont ouvertes pour vous (ou sur ce réseau) : les mises à jour en direct sont suspendues ici. Fermez les onglets inutiles ; celui-ci réessaie dans une minute.",
    );
    // The first tab's stream is untouched.
    await expect(first.connectionLine).toHaveAttribute("data-state", "connected");
    await expect(first.adapter.locator(".notice-too-many-streams")).toBeHidden();
  });
});
