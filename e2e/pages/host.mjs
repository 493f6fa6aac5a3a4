import { expect } from "@playwright/test";

// Page object of the host emulator and of the adapter inside its iframe.
export class HostPage {
  constructor(page, stack) {
    this.page = page;
    this.stack = stack;
    this.frameElement = page.locator("#adapter-frame");
    this.dock = page.locator(".adapter-dock");
    this.messageLog = page.locator("#message-log");
    this.statusMenu = page.locator("#user-status");
    this.langMenu = page.locator("#host-lang");
    this.adapter = page.frameLocator("#adapter-frame");
    this.header = this.adapter.locator(".adapter-header");
    this.minimiseToggle = this.adapter.locator("button.minimise-toggle");
    this.body = this.adapter.locator("#adapter-body");
    this.connectionLine = this.adapter.locator(".connection-line");
    this.storageNotice = this.adapter.locator(".notice-storage");
    this.dialInput = this.adapter.locator("#dial-input");
    this.dialPreview = this.adapter.locator(".dial-preview");
    this.dialFor = this.adapter.locator(".dial-for");
    this.callButton = this.adapter.locator("button.call");
    this.diagnostics = this.adapter.locator(".diagnostics");
    this.emailInput = this.adapter.locator(".sign-in input[name='email']");
    this.signInButton = this.adapter.locator(".sign-in button[type='submit']");
    this.signInError = this.adapter.locator(".sign-in .form-error");
    this.statusSelect = this.adapter.locator("select.status-select");
    this.nextStatus = this.adapter.locator(".next-status-name");
    this.outcome = this.adapter.locator(".outcome");
    this.callPanel = this.adapter.locator(".call-panel");
    // The admins' settings page, in the dialog the host's settings entry opens.
    this.settingsEntry = page.locator("#settings-open");
    this.settings = page.frameLocator("#settings-frame");
  }

  /** Opens the adapter's settings page from the host's settings entry; waits for its handshake. */
  async openSettings() {
    await this.settingsEntry.click();
    await this.settings.locator("main.settings-page").waitFor();
    await this.messageLog.locator("li[data-type='ready']", { hasText: "(settings)" }).first().waitFor();
  }

  async closeSettings() {
    await this.page.locator("#settings-close").click();
  }

  /** Makes the signed-in agent Available from the adapter's menu. */
  async setAvailable() {
    await this.statusSelect.selectOption({ label: "Available" });
    await expect(this.outcome).toHaveText("Status: Available");
  }

  /** The simulated contact center offers an inbound call from `number` to agent `agentId`;
   * resolves with the session. */
  async offerInboundCall(agentId, number = "+14155552671") {
    const session = await this.page.evaluate(
      ([agent, from]) => window.hostEmulator.scenario("inbound_call", { agent_id: agent, number: from }),
      [agentId, number],
    );
    expect(session.error).toBeUndefined();
    return session;
  }

  /** A call control button of the call panel (answer, hold, resume, end, …). */
  control(action) {
    return this.callPanel.locator(`button.control-${action}`);
  }

  /** Signs in as the host's Kustomer user (the demo gateway accepts it without a password). */
  async signIn() {
    await this.handshake();
    await expect(this.emailInput).toHaveValue(/@/);
    await this.signInButton.click();
    await expect(this.statusSelect).toBeVisible();
    await expect(this.statusSelect.locator("option[value='0']")).toHaveCount(1);
  }

  async goto(query = "") {
    await this.page.goto(this.stack.hostUrl + query);
    await this.header.waitFor();
  }

  /** Waits until the host has answered the adapter's `ready` with `init`. */
  async handshake() {
    await this.messageLog.locator("li[data-type='init']").first().waitFor();
  }

  async reload() {
    await this.page.reload();
    await this.header.waitFor();
  }

  phoneIcon(number) {
    return this.page.getByRole("button", { name: `Call ${number}`, exact: true });
  }

  /** The adapter's frame, for evaluating scripts in it. */
  adapterFrame() {
    const origin = new URL(this.stack.adapterUrl).origin;
    return this.page.frames().find((frame) => frame.url().startsWith(origin));
  }

  async openDiagnostics() {
    await this.diagnostics.locator("summary").click();
  }
}
