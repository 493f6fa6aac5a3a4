// The host emulator: stands in for the Kustomer agent desktop around the adapter iframe, and
// speaks protocol v1 (docs/host-protocol.md) with it. Kustomer opens app iframes with `parentUrl`
// (the desktop's URL) and `id` query parameters.
"use strict";

(function () {
  const PROTOCOL = "ccai-adapter";
  const config = window.HOST_CONFIG || {};
  const frame = document.getElementById("adapter-frame");
  const settingsDialog = document.getElementById("settings-dialog");
  const settingsFrame = document.getElementById("settings-frame");
  const dock = document.querySelector(".adapter-dock");
  const logList = document.getElementById("message-log");
  const langSelect = document.getElementById("host-lang");
  const statusSelect = document.getElementById("user-status");

  const agent = { id: "kus-user-1", email: "ada.lovelace@example.com", name: "Ada Lovelace" };
  const customers = [
    { id: "cus-grace", name: "Grace Hopper", company: "US Navy", conversation: "conv-grace-1",
      phones: [{ phone: "(415) 555-2671", type: "mobile" }, { phone: "212-555-0143 ext. 204", type: "work" }] },
    { id: "cus-amelie", name: "Amélie Poulain", company: "Café des 2 Moulins",
      phones: [{ phone: "+33 6 12 34 56 78", type: "mobile" }, { phone: "0033 1 23 45 67 89", type: "home" }] },
    { id: "cus-arthur", name: "Arthur Dent", phones: [{ phone: "+44 (0)20 7946 0958", type: "work" }] },
    { id: "cus-broken", name: "Broken Record Ltd", phones: [{ phone: "555-01AB", type: "work" }] },
  ];
  // The user's Kustomer routing statuses; the simulator's Kustomer side has the same, and keeps
  // the user's current one (its work session), which the adapter's gateway may write.
  const statuses = [
    { id: "rs-available", name: "Available", status_type: "available" },
    { id: "rs-busy", name: "Busy", status_type: "busy" },
    { id: "rs-lunch", name: "Lunch", status_type: "unavailable" },
    { id: "rs-email", name: "Email only", status_type: "unavailable" },
    { id: "rs-meeting", name: "In a meeting", status_type: "unavailable" },
    { id: "rs-offline", name: "Offline", status_type: "offline" },
  ];
  let selected = customers[0];
  // The desktop's language: the agent's browser's, as a Kustomer user's usually is.
  langSelect.value = (navigator.language || "").toLowerCase().startsWith("fr") ? "fr-FR" : "en-US";
  let nextId = 0;

  let adapterUrl;
  try {
    adapterUrl = new URL(config.adapterUrl || "http://127.0.0.1:8700/");
  } catch (error) {
    dock.textContent = "The adapter URL in the host configuration is not a URL: " + config.adapterUrl;
    return;
  }
  const adapterOrigin = adapterUrl.origin;

  // Exposed for end-to-end tests and for poking at the emulator from the console.
  const emulator = { log: [], send, clickToCall, adapterOrigin, scenario, customerAnswers };
  window.hostEmulator = emulator;

  function log(direction, type, detail) {
    const entry = { direction, type, detail, at: performance.timeOrigin + performance.now() };
    emulator.log.push(entry);
    if (emulator.log.length > 1000) emulator.log.shift();
    const item = document.createElement("li");
    item.className = "log-" + direction;
    item.dataset.type = type;
    const arrow = { out: "→", in: "←", ignored: "✗", note: "•" }[direction] || "?";
    item.textContent = `${arrow} ${type}${detail ? " " + detail : ""}`;
    logList.prepend(item);
    while (logList.children.length > 200) logList.lastChild.remove();
    return entry;
  }

  /** Sends a protocol message to the adapter's frame, or to `target` (the settings page). */
  function send(type, payload, extra, target) {
    const message = Object.assign({ protocol: PROTOCOL, version: 1, type, id: "h-" + ++nextId, payload }, extra);
    const raw = JSON.stringify(message);
    const entry = log("out", type, raw.length > 160 ? raw.slice(0, 160) + "…" : raw);
    const to = target || frame;
    if (to.contentWindow) to.contentWindow.postMessage(raw, adapterOrigin);
    return entry;
  }

  function context() {
    return {
      customer: { id: selected.id, name: selected.name, phones: selected.phones },
      conversation: selected.conversation ? { id: selected.conversation } : null,
    };
  }

  function sendInit(replyTo, target) {
    send("init", { user: agent, context: context(), lang: langSelect.value, roles: ["agent"] },
      replyTo ? { reply_to: replyTo } : {}, target);
  }

  /** The digits of a phone number, for matching a call's E.164 number to a customer's phone. */
  function digits(phone) {
    return String(phone).split(/ext|x|#/i)[0].replace(/\D/g, "").replace(/^00/, "");
  }

  /** Kustomer's GET /v1/customers/phone={phone}: the customer (JSON:API) with its company. */
  function customerByPhone(phone) {
    const wanted = digits(phone);
    const customer = wanted.length >= 7 && customers.find((c) => c.phones.some((p) => {
      const have = digits(p.phone).replace(/^0+/, "");
      return have.length >= 7 && (wanted.endsWith(have) || have.endsWith(wanted));
    }));
    if (!customer) {
      return { status: 404, body: { errors: [{ status: 404, code: "not_found", title: "no customer has this phone" }] } };
    }
    const body = {
      data: {
        type: "customer", id: customer.id, attributes: { name: customer.name },
        relationships: customer.company ? { company: { data: { type: "company", id: "co-" + customer.id } } } : {},
      },
    };
    if (customer.company) body.included = [{ type: "company", id: "co-" + customer.id, attributes: { name: customer.company } }];
    return { status: 200, body };
  }

  function clickToCall(customer, phone) {
    return send("click_to_call", {
      phone,
      customer: { id: customer.id, name: customer.name },
      conversation_id: customer.conversation || null,
    });
  }

  function renderCustomers() {
    const list = document.getElementById("customers");
    list.textContent = "";
    for (const customer of customers) {
      const item = document.createElement("li");
      item.className = "customer" + (customer === selected ? " selected" : "");
      const name = document.createElement("button");
      name.type = "button";
      name.className = "customer-name";
      name.textContent = customer.name;
      name.addEventListener("click", () => {
        selected = customer;
        renderCustomers();
        send("context_changed", context());
      });
      item.append(name);
      const phones = document.createElement("ul");
      for (const entry of customer.phones) {
        const row = document.createElement("li");
        row.className = "phone-row";
        const number = document.createElement("span");
        number.className = "phone-number";
        number.textContent = `${entry.phone} (${entry.type})`;
        const icon = document.createElement("button");
        icon.type = "button";
        icon.className = "phone-icon";
        icon.textContent = "☎";
        icon.setAttribute("aria-label", `Call ${entry.phone}`);
        icon.addEventListener("click", () => clickToCall(customer, entry.phone));
        row.append(icon, number);
        phones.append(row);
      }
      item.append(phones);
      list.append(item);
    }
  }

  for (const status of statuses) {
    const option = document.createElement("option");
    option.value = status.id;
    option.textContent = status.name;
    statusSelect.append(option);
  }
  function statusChanged(status) {
    send("user_status_changed", {
      status_id: status.id, name: status.name, status_type: status.status_type, at: new Date().toISOString(),
    });
  }
  // The user picks a status in the desktop: Kustomer records it and tells the adapter.
  // Counted at each pick and when its write lands; writes not landed yet.
  let localChanges = 0;
  let writesPending = 0;
  statusSelect.addEventListener("change", () => {
    localChanges += 1;
    writesPending += 1;
    const status = statuses.find((s) => s.id === statusSelect.value);
    fetch(`/_sim/desktop/status/${encodeURIComponent(agent.id)}`, {
      method: "PUT",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ status_id: status.id }),
    })
      .catch(() => {})
      .finally(() => {
        writesPending -= 1;
        localChanges += 1;
      });
    statusChanged(status);
  });
  // Kustomer pushes status changes made elsewhere (e.g. written back by the adapter's gateway)
  // to the desktop, which tells the adapter too.
  async function followKustomerStatus() {
    try {
      // A read that started before the user's pick was written, or was under way meanwhile,
      // may predate that pick: it is not applied (the next read is).
      const changesBefore = writesPending === 0 ? localChanges : -1;
      const response = await fetch(`/_sim/desktop/status/${encodeURIComponent(agent.id)}`);
      if (response.ok) {
        const { current } = await response.json();
        const status = statuses.find((s) => s.id === current.status_id);
        if (status && statusSelect.value !== status.id && changesBefore === localChanges) {
          statusSelect.value = status.id;
          log("note", "kustomer_status", `Kustomer set ${status.name}`);
          statusChanged(status);
        }
      }
    } catch (error) {
      // The simulator is restarting: try again at the next tick.
    }
    setTimeout(followKustomerStatus, 300);
  }
  followKustomerStatus();
  langSelect.addEventListener("change", () => {
    sendInit(null);
    if (!settingsDialog.hidden) sendInit(null, settingsFrame);
  });

  // Only the adapter's frames (the widget and its settings page), from the adapter's origin, are
  // listened to.
  window.addEventListener("message", (event) => {
    const fromSettings = !settingsDialog.hidden && event.source === settingsFrame.contentWindow;
    if (event.origin !== adapterOrigin || (event.source !== frame.contentWindow && !fromSettings)) {
      if (typeof event.data === "string" && event.data === "hostile-frame-done") {
        log("note", "hostile-frame-done", `from ${event.origin}`);
      } else {
        log("ignored", "message", `from ${event.origin}`);
      }
      return;
    }
    let message;
    try {
      message = JSON.parse(event.data);
    } catch (error) {
      log("ignored", "not-json", String(event.data).slice(0, 80));
      return;
    }
    if (!message || message.protocol !== PROTOCOL) return;
    const payload = message.payload || {};
    const source = fromSettings ? settingsFrame : frame;
    log("in", message.type, (fromSettings ? "(settings) " : "") + JSON.stringify(payload).slice(0, 160));
    if (fromSettings && message.type !== "ready" && message.type !== "api_request") return;
    switch (message.type) {
      case "ready":
        sendInit(message.id, source);
        break;
      case "open":
        dock.classList.add("attention");
        setTimeout(() => dock.classList.remove("attention"), 1500);
        break;
      case "resize":
        if (Number.isInteger(payload.height) && payload.height > 0 && payload.height <= 2000) {
          dock.style.height = payload.height + "px";
        }
        break;
      case "open_conversation": {
        const target = document.getElementById("conversation");
        target.classList.remove("muted");
        target.textContent = `Conversation ${payload.conversation_id} of customer ${payload.customer_id}`;
        break;
      }
      case "notice": {
        const notice = document.getElementById("host-notice");
        notice.hidden = false;
        notice.textContent = payload.text;
        break;
      }
      case "api_request":
        // The Kustomer API as the agent: the routing statuses (for the admins' status mapping);
        // anything else is refused in Kustomer's error format.
        if (payload.method === "GET" && String(payload.path).startsWith("/v1/customers/phone=")) {
          const phone = decodeURIComponent(payload.path.slice("/v1/customers/phone=".length));
          send("api_response", customerByPhone(phone), { reply_to: message.id }, source);
        } else if (payload.method === "GET" && payload.path === "/v1/routing/statuses") {
          send("api_response", {
            status: 200,
            body: {
              data: statuses.map((s) => ({
                type: "routing_status", id: s.id, attributes: { name: s.name, statusType: s.status_type },
              })),
            },
          }, { reply_to: message.id }, source);
        } else {
          send("api_response", {
            status: 501,
            body: { errors: [{ code: "not_implemented", message: "the host emulator answers GET /v1/routing/statuses and /v1/customers/phone= only" }] },
          }, { reply_to: message.id }, source);
        }
        break;
      default:
        break;
    }
  });

  // The simulated contact center, driven same-origin (the simulator serves this page).
  const scenarioAgent = document.getElementById("scenario-agent");
  const scenarioResult = document.getElementById("scenario-result");

  // The scenarios target the agent who signs in in the adapter unless another id is typed: the
  // gateway signs the desktop's user in only as the contact-center agent with the same email,
  // which the simulated contact center names (Ada's is 101 in its seed data). Only this panel
  // uses it; never sent to the adapter.
  let ownAgent = null;
  const ownAgentKnown = fetch(`/_sim/desktop/agent/${encodeURIComponent(agent.id)}`)
    .then((response) => (response.ok ? response.json() : null))
    .then((body) => {
      ownAgent = body && Number.isInteger(body.ccai_agent_id) ? body.ccai_agent_id : null;
      if (ownAgent !== null && !scenarioAgent.value) scenarioAgent.value = String(ownAgent);
      if (ownAgent === null) scenarioResult.textContent = `No contact-center agent has ${agent.email}: type an agent id.`;
    })
    .catch(() => {});
  async function agentId(options) {
    await ownAgentKnown;
    const id = Number((options && options.agent_id) || scenarioAgent.value || ownAgent);
    return Number.isInteger(id) && id > 0 ? id : ownAgent;
  }

  async function simulator(method, path, body) {
    const response = await fetch(path, {
      method,
      headers: body ? { "content-type": "application/json" } : {},
      body: body ? JSON.stringify(body) : undefined,
    });
    const json = await response.json().catch(() => null);
    return { ok: response.ok, status: response.status, body: json };
  }

  function report(what, result) {
    const text = result.ok
      ? `${what}: ${result.body.type || "call"} ${result.body.id} is ${result.body.status}`
      : `${what} refused (${result.status}): ${(result.body && result.body.message) || "no reason given"}`;
    scenarioResult.textContent = text;
    log("note", what, text);
  }

  /** Runs a scenario (inbound_call, chat, voicemail, abandoned, smart_action, csat); resolves
   * with the session JSON, or {error, status} when the simulator refused. */
  async function scenario(kind, options) {
    const body = Object.assign(
      // An inbound session knows no Kustomer conversation until the CRM sync makes or finds it.
      { kind, conversation_id: null },
      options || {},
      { agent_id: await agentId(options) },
    );
    const result = await simulator("POST", "/_sim/scenarios", body);
    report(kind, result);
    return result.ok ? result.body : { error: (result.body && result.body.message) || "refused", status: result.status };
  }

  /** The customer answers the agent's latest outbound call that is still dialing. */
  async function customerAnswers(options) {
    const id = await agentId(options);
    const sessions = await simulator("GET", "/_sim/sessions");
    const dialing = (sessions.body || [])
      .filter((s) => s.agent_id === id && s.direction === "outbound" && (s.status === "assigned" || s.status === "selecting"))
      .pop();
    if (!dialing) {
      scenarioResult.textContent = `No outbound call of agent ${id} is dialing.`;
      return { error: "no outbound call is dialing", status: 404 };
    }
    const result = await simulator("POST", `/_sim/calls/${dialing.id}/connect`);
    report("customer answers", result);
    return result.ok ? result.body : { error: (result.body && result.body.message) || "refused", status: result.status };
  }

  for (const button of document.querySelectorAll("[data-scenario]")) {
    button.addEventListener("click", () => scenario(button.dataset.scenario));
  }
  document.getElementById("customer-answers").addEventListener("click", () => customerAnswers());

  renderCustomers();
  adapterUrl.searchParams.set("parentUrl", window.location.href);
  adapterUrl.searchParams.set("id", "ccai-adapter");
  frame.src = adapterUrl.toString();

  // Kustomer opens an app's custom settings page (settingsPageConfig.url) in an iframe of its
  // Settings menu; here, from the rail's settings entry.
  function openSettings() {
    const url = new URL("settings/", adapterUrl);
    url.search = "";
    url.searchParams.set("parentUrl", window.location.href);
    url.searchParams.set("id", "ccai-adapter-settings");
    settingsDialog.hidden = false;
    settingsFrame.src = url.toString();
    document.getElementById("settings-close").focus();
  }
  function closeSettings() {
    settingsDialog.hidden = true;
    settingsFrame.removeAttribute("src");
    document.getElementById("settings-open").focus();
  }
  document.getElementById("settings-open").addEventListener("click", openSettings);
  document.getElementById("settings-close").addEventListener("click", closeSettings);
  emulator.openSettings = openSettings;
  emulator.closeSettings = closeSettings;

  // ?hostile=1 adds a frame from another origin that tries to drive the adapter.
  if (new URLSearchParams(window.location.search).has("hostile") && config.simulatorUrl) {
    const hostile = document.createElement("iframe");
    hostile.id = "hostile-frame";
    hostile.title = "hostile frame";
    hostile.className = "hostile-frame";
    frame.addEventListener("load", () => {
      const url = new URL("/_sim/hostile.html", config.simulatorUrl);
      url.searchParams.set("adapter", adapterOrigin);
      url.searchParams.set("host", window.location.origin);
      hostile.src = url.toString();
      document.body.append(hostile);
    }, { once: true });
  }
})();
