// The widget shell inside the host emulator, against the running stack.
import AxeBuilder from "@axe-core/playwright";

import { expect, test } from "../fixtures.mjs";

test("the host emulator shows the adapter in its sidebar iframe", async ({ host }) => {
  await host.goto();
  await expect(host.header).toContainText("CCAI Platform");
  const src = new URL(await host.frameElement.getAttribute("src"));
  expect(src.origin).toBe(new URL(host.stack.adapterUrl).origin);
  expect(src.origin).not.toBe(new URL(host.stack.hostUrl).origin);
  expect(src.searchParams.get("parentUrl")).toBe(host.stack.hostUrl);
  expect(src.searchParams.get("id")).toBe("ccai-adapter");
});

test("the minimised state survives a reload", async ({ host }) => {
  await host.goto();
  await expect(host.body).toBeVisible();
  await expect(host.minimiseToggle).toHaveAttribute("aria-expanded", "true");

  await host.minimiseToggle.click();
  await expect(host.body).toBeHidden();
  await expect(host.minimiseToggle).toHaveAttribute("aria-expanded", "false");

  await host.reload();
  await expect(host.body).toBeHidden();
  await expect(host.minimiseToggle).toHaveAttribute("aria-expanded", "false");

  await host.minimiseToggle.click();
  await host.reload();
  await expect(host.body).toBeVisible();
});

test("the connection line follows the gateway: connected, offline when stopped, back when restarted", async ({
  host,
}) => {
  await host.goto();
  await expect(host.connectionLine).toHaveAttribute("data-state", "connected");
  await expect(host.connectionLine).toContainText("Connected");
  try {
    await host.stack.gateway.stop();
    // The next probe is at most 5 s away; then it fails at once (connection refused).
    await expect(host.connectionLine).toHaveAttribute("data-state", "offline", { timeout: 15_000 });
    await expect(host.connectionLine).toContainText("Gateway unreachable");
  } finally {
    await host.stack.gateway.start();
  }
  // Retries back off to at most 15 s.
  await expect(host.connectionLine).toHaveAttribute("data-state", "connected", { timeout: 20_000 });
});

test("blocked storage: a visible note, and minimise still works for the session", async ({ host, page }) => {
  const adapterOrigin = new URL(host.stack.adapterUrl).origin;
  await page.addInitScript((origin) => {
    if (window.location.origin === origin) {
      Object.defineProperty(window, "localStorage", {
        get() {
          throw new DOMException("The operation is insecure.", "SecurityError");
        },
      });
    }
  }, adapterOrigin);
  await host.goto();
  await expect(host.storageNotice).toContainText("blocks storage");
  await host.minimiseToggle.click();
  await expect(host.body).toBeHidden();
  await host.minimiseToggle.click();
  await expect(host.body).toBeVisible();
});

test.describe("in French", () => {
  test.use({ locale: "fr-FR" });

  test("without a host, the adapter speaks the browser's language", async ({ page, stack }) => {
    await page.goto(stack.adapterUrl);
    await expect(page.locator(".connection-line")).toContainText("Connecté");
    await expect(page.locator("button.minimise-toggle")).toHaveAttribute("aria-label", "Réduire l’adaptateur");
    await expect(page.locator("html")).toHaveAttribute("lang", "fr");
  });

  test("in the host emulator, it speaks the desktop's language", async ({ host }) => {
    await host.goto();
    await host.handshake();
    await expect(host.langMenu).toHaveValue("fr-FR");
    await expect(host.connectionLine).toContainText("Connecté");
  });
});

test("keyboard and accessibility: the toggle works from the keyboard and axe finds no violation", async ({
  host,
  page,
}) => {
  await host.goto();
  await host.minimiseToggle.focus();
  await page.keyboard.press("Enter");
  await expect(host.body).toBeHidden();
  await page.keyboard.press("Space");
  await expect(host.body).toBeVisible();

  const results = await new AxeBuilder({ page }).include("#adapter-frame").analyze();
  expect(results.violations.map((v) => `${v.id}: ${v.help}`)).toEqual([]);
});
