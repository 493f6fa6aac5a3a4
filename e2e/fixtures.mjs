// Test fixtures: one running stack (simulator + gateway, the demo's binaries and dist/) per
// worker, on free ports and a fresh data folder, and a page object for the host emulator.
import { test as base, expect } from "@playwright/test";
import { mkdtempSync } from "node:fs";
import os from "node:os";
import path from "node:path";

import { freePort, startStack } from "../scripts/stack.mjs";
import { HostPage } from "./pages/host.mjs";

export const test = base.extend({
  stack: [
    async ({}, use) => {
      const stack = await startStack({
        ports: { gateway: await freePort(), simulator: await freePort(), host: await freePort() },
        dataDir: mkdtempSync(path.join(os.tmpdir(), "adapter-e2e-")),
        profile: process.env.STACK_PROFILE || "debug",
        quiet: !process.env.STACK_LOGS,
      });
      await use(stack);
      await stack.stop();
    },
    { scope: "worker" },
  ],
  host: async ({ page, stack }, use) => {
    await use(new HostPage(page, stack));
  },
});

export { expect };
