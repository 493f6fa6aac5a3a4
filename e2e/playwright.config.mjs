import { defineConfig } from "@playwright/test";

// Debian's Chromium; Playwright's own browser download cannot work on these machines.
const chromium = process.env.CHROMIUM || "/usr/bin/chromium";

export default defineConfig({
  testDir: "tests",
  // One stack (gateway + simulator) is shared by the tests, and one test stops the gateway.
  workers: 1,
  fullyParallel: false,
  retries: 0,
  timeout: 60_000,
  expect: { timeout: 10_000 },
  outputDir: "test-results",
  reporter: [["list"], ["json", { outputFile: "results/results.json" }]],
  use: {
    browserName: "chromium",
    launchOptions: {
      executablePath: chromium,
      args: [
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        "--disable-quic",
      ],
    },
    trace: "retain-on-failure",
  },
});
