// Page object of the host emulator and of the adapter inside its iframe.
export class HostPage {
  constructor(page, stack) {
    this.page = page;
    this.stack = stack;
    this.frameElement = page.locator("#adapter-frame");
    this.adapter = page.frameLocator("#adapter-frame");
    this.header = this.adapter.locator(".adapter-header");
    this.minimiseToggle = this.adapter.locator("button.minimise-toggle");
    this.body = this.adapter.locator("#adapter-body");
    this.connectionLine = this.adapter.locator(".connection-line");
    this.notice = this.adapter.locator(".notice");
  }

  async goto() {
    await this.page.goto(this.stack.hostUrl);
    await this.header.waitFor();
  }

  async reload() {
    await this.page.reload();
    await this.header.waitFor();
  }
}
