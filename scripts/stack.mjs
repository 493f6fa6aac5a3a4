// Starts the embedded stack: the simulator (simulated APIs + host emulator) and the gateway
// (agent API + the built widget from dist/). Used by the demo (`node scripts/stack.mjs`) and by
// the end-to-end tests (imported), so both run the same thing.
import { spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdirSync } from "node:fs";
import net from "node:net";
import path from "node:path";
import { fileURLToPath } from "node:url";

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");

/** A free TCP port on loopback. */
export function freePort() {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.unref();
    server.on("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}

async function waitHealthy(url, child, name, deadlineMs) {
  const deadline = Date.now() + deadlineMs;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) {
      throw new Error(`${name} exited with code ${child.exitCode} before answering ${url}`);
    }
    try {
      const response = await fetch(url, { signal: AbortSignal.timeout(1000) });
      if (response.ok) return;
    } catch {
      // not up yet
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`${name} did not answer ${url} within ${deadlineMs} ms`);
}

/** One child process that can be stopped and started again with the same arguments. */
class Service {
  constructor(name, bin, args, healthUrl, { quiet, env }) {
    Object.assign(this, { name, bin, args, healthUrl, quiet, env: env ?? {}, child: null });
  }

  async start() {
    const child = spawn(this.bin, this.args, {
      cwd: ROOT,
      stdio: ["ignore", this.quiet ? "ignore" : "inherit", this.quiet ? "pipe" : "inherit"],
      env: { ...process.env, RUST_LOG: process.env.RUST_LOG || "info", ...this.env },
    });
    this.stderr = "";
    child.stderr?.on("data", (chunk) => {
      this.stderr = (this.stderr + chunk).slice(-4000);
    });
    child.on("error", (error) => {
      this.stderr += `\n${error.message}`;
    });
    this.child = child;
    try {
      await waitHealthy(this.healthUrl, child, this.name, 30_000);
    } catch (error) {
      error.message += `\n--- ${this.name} stderr ---\n${this.stderr}`;
      await this.stop();
      throw error;
    }
  }

  /** SIGTERM (graceful), then SIGKILL after 5 s. */
  async stop() {
    const child = this.child;
    this.child = null;
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise((resolve) => child.once("exit", resolve));
    child.kill("SIGTERM");
    const timer = setTimeout(() => child.kill("SIGKILL"), 5000);
    await exited;
    clearTimeout(timer);
  }
}

/**
 * Starts simulator and gateway. Options: ports {gateway, simulator, host}, dataDir, profile
 * ("debug" or "release" binaries under target/), quiet (capture logs instead of printing),
 * gatewayArgs (more flags for the gateway, e.g. a tighter limit for one test), databaseUrl (the
 * gateway's store: SQLite in the data folder when absent). With STACK_DATABASE_URL set to a
 * PostgreSQL server's URL (postgres://user@host:port), each stack gets a database of its own on
 * it: how the test command runs the end-to-end suite on PostgreSQL.
 */
export async function startStack(options = {}) {
  const ports = options.ports ?? { gateway: 8700, simulator: 8710, host: 8720 };
  const profile = options.profile ?? "debug";
  const dataDir = options.dataDir ?? path.join(ROOT, "data");
  const quiet = options.quiet ?? false;
  const bin = (name) => path.join(ROOT, "target", profile, name);
  mkdirSync(dataDir, { recursive: true });
  const databaseUrl =
    options.databaseUrl ??
    (process.env.STACK_DATABASE_URL
      ? `${process.env.STACK_DATABASE_URL.replace(/\/+$/, "")}/stack_${randomBytes(6).toString("hex")}`
      : undefined);

  const adapterUrl = `http://127.0.0.1:${ports.gateway}/`;
  // The simulator's session events go to the gateway (call events and chat events each with
  // their own credentials, as the platform configures them), with development credentials made
  // up for this run. They travel in the environment (not on command lines, where any local user
  // can read them) and are never printed.
  const webhookUser = "ccai-webhooks";
  const webhookPassword = randomBytes(18).toString("base64url");
  const chatWebhookUser = "ccai-chat-webhooks";
  const chatWebhookPassword = randomBytes(18).toString("base64url");
  const simulator = new Service(
    "simulator",
    bin("adapter-simulator"),
    [
      "--listen", `127.0.0.1:${ports.simulator}`,
      "--host-listen", `127.0.0.1:${ports.host}`,
      "--host-dir", path.join(ROOT, "host"),
      "--adapter-url", adapterUrl,
    ],
    `http://127.0.0.1:${ports.simulator}/healthz`,
    {
      quiet,
      env: {
        SIMULATOR_WEBHOOK_URL: `http://127.0.0.1:${ports.gateway}/webhooks/ccai`,
        SIMULATOR_WEBHOOK_USER: webhookUser,
        SIMULATOR_WEBHOOK_PASSWORD: webhookPassword,
        SIMULATOR_CHAT_WEBHOOK_USER: chatWebhookUser,
        SIMULATOR_CHAT_WEBHOOK_PASSWORD: chatWebhookPassword,
      },
    },
  );
  const gateway = new Service(
    "gateway",
    bin("adapter-gateway"),
    [
      "--listen", `127.0.0.1:${ports.gateway}`,
      "--data-dir", path.join(dataDir, "gateway"),
      "--widget-dir", path.join(ROOT, "dist"),
      // The demo's CCAI tenant is the simulator, and its agents sign in without passwords.
      "--ccai-url", `http://127.0.0.1:${ports.simulator}`,
      // The demo's Kustomer org is the simulator too.
      "--kustomer-url", `http://127.0.0.1:${ports.simulator}`,
      "--dev-sign-in",
      // The host emulator's user administers the demo (status inheritance settings).
      "--admin-emails", "ada.lovelace@example.com",
      // The host emulator is the demo's Kustomer: the only origin that may frame the widget
      // and that the widget talks to (its port is random in the end-to-end tests).
      "--kustomer-origins", `http://127.0.0.1:${ports.host}`,
      ...(options.gatewayArgs ?? []),
    ],
    `http://127.0.0.1:${ports.gateway}/healthz`,
    {
      quiet,
      env: {
        GATEWAY_CALL_WEBHOOK_USER: webhookUser,
        GATEWAY_CALL_WEBHOOK_PASSWORD: webhookPassword,
        GATEWAY_CHAT_WEBHOOK_USER: chatWebhookUser,
        GATEWAY_CHAT_WEBHOOK_PASSWORD: chatWebhookPassword,
        // The simulator's extension (what the public CCAI APIs do not document) is on for the
        // demo only; a real tenant runs without it.
        GATEWAY_CCAI_EXTENSION: "true",
        ...(databaseUrl ? { GATEWAY_DATABASE_URL: databaseUrl } : {}),
      },
    },
  );
  await simulator.start();
  try {
    await gateway.start();
  } catch (error) {
    await simulator.stop();
    throw error;
  }
  return {
    ports,
    simulator,
    gateway,
    hostUrl: `http://127.0.0.1:${ports.host}/`,
    simulatorUrl: `http://127.0.0.1:${ports.simulator}`,
    adapterUrl,
    async stop() {
      await Promise.all([gateway.stop(), simulator.stop()]);
    },
  };
}

// The demo: `node scripts/stack.mjs [--release]`. Ctrl-C stops everything it started.
if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const env = (name, fallback) => Number(process.env[name] || fallback);
  const stack = await startStack({
    profile: process.argv.includes("--release") ? "release" : "debug",
    // DEMO_DATABASE_URL=postgres://…: the demo's gateway on PostgreSQL instead of SQLite. From
    // the environment, not the command line, where any local user could read its password.
    databaseUrl: process.env.DEMO_DATABASE_URL || undefined,
    ports: {
      gateway: env("DEMO_GATEWAY_PORT", 8700),
      simulator: env("DEMO_SIMULATOR_PORT", 8710),
      host: env("DEMO_HOST_PORT", 8720),
    },
  }).catch((error) => {
    console.error(`demo: ${error.message}`);
    process.exit(1);
  });
  console.log(`
  The demo is running.
    Kustomer host emulator (open this):  ${stack.hostUrl}
    Adapter gateway:                      ${stack.adapterUrl}
    Simulator (recorded state):           ${stack.simulatorUrl}/_sim/state
  Ctrl-C stops everything.
`);
  let stopping = false;
  const shutdown = async () => {
    if (stopping) return;
    stopping = true;
    console.log("demo: stopping");
    await stack.stop();
    process.exit(0);
  };
  process.on("SIGINT", shutdown);
  process.on("SIGTERM", shutdown);
  for (const service of [stack.simulator, stack.gateway]) {
    service.child.on("exit", (code) => {
      if (!stopping) {
        console.error(`demo: ${service.name} exited (code ${code}); stopping`);
        shutdown();
      }
    });
  }
}
