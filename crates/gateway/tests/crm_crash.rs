//! Crash and failover tests of the CRM sync: 500 answered IVR calls in a burst while gateways
//! write them to Kustomer. Every Kustomer record the calls must produce has to be there exactly
//! once: per session one customer, one conversation, the call's message (written when the call
//! ends) with the recording attached and the durations, the phone number note and both
//! assignments.
//!
//! - Crash: the real `adapter-gateway` binary is killed with SIGKILL twice while it writes and
//!   restarted on the same port and store.
//! - Failover (PostgreSQL only): two replicas on one store behind HAProxy, which the webhooks
//!   and the agents' event streams go through; replica A is SIGKILLed twice and restarted. The
//!   streams resume on whichever replica HAProxy picks and must get every event in order, and
//!   the replicas together must keep to the tenant's and the org's budgets (the simulator
//!   answers 429 past them, and counts those: none).
//!
//! The simulator runs in this process (its CCAI side sends the session webhooks to the gateway
//! and retries them while the gateway is down; its Kustomer side records every write).

use std::{
    collections::{BTreeMap, HashMap},
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    sync::{
        atomic::{AtomicUsize, Ordering},
        Arc, Mutex,
    },
    time::Duration,
};

use adapter_simulator::{webhooks::Target, Simulator};
use futures_util::{SinkExt, StreamExt};
use reqwest::{Client, StatusCode};
use serde_json::{json, Value};
use tokio::time::Instant;
use tokio_tungstenite::{connect_async, tungstenite::Message};

mod support;
use support::process::GatewayProcess;

/// One burst at a time in this binary: each keeps two cores busy on its own.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

const SESSIONS: usize = 500;
/// The CRM workers of each gateway: operations in flight at once.
const CRM_WORKERS: usize = 8;
/// The Kustomer org's requests per minute in the failover test: a burst needs more than one
/// minute's worth, so the replicas meet the limit together.
const KUSTOMER_PER_MINUTE: u32 = 2400;
/// The gateway is killed when this many sessions have been driven.
const KILL_AT: [usize; 2] = [150, 330];
const HOOK_USER: &str = "ccai-hooks";
const HOOK_PASSWORD: &str = "crash-hook-secret";
const ADMIN: &str = "grace.hopper@example.com";
/// The simulator's CCAI agents and the Kustomer users with their emails.
const AGENTS: [(i64, &str); 3] = [
    (101, "kus-user-1"),
    (102, "kus-user-2"),
    (103, "kus-user-3"),
];

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("a clock after 1970")
        .as_millis() as i64
}

async fn post(http: &Client, url: &str, body: Value) -> (StatusCode, Value) {
    let response = http
        .post(url)
        .json(&body)
        .send()
        .await
        .unwrap_or_else(|e| panic!("POST {url}: {e}"));
    let status = response.status();
    (status, response.json().await.unwrap_or(Value::Null))
}

/// Signs the admin in (the gateway's sessions are per process start for this test).
async fn admin_token(http: &Client, gateway: &str) -> String {
    let (status, body) = post(
        http,
        &format!("{gateway}/api/v1/sessions"),
        json!({"email": ADMIN, "kustomer_user": {"id": "kus-user-2", "email": ADMIN}}),
    )
    .await;
    assert!(status.is_success(), "admin sign-in: {status} {body}");
    body["token"].as_str().expect("a token").to_owned()
}

/// One answered and ended inbound IVR call of `agent`, from a number of its own.
async fn call(http: &Client, sim: &str, agent: i64, i: usize) -> i64 {
    let number = format!("+1415556{i:04}");
    let scenario = json!({"kind": "inbound_call", "agent_id": agent, "number": number,
        "recording": true,
        "session": {"origin": "ivr", "selected_menu": {"id": 7, "name": "Billing"}, "lang": "en",
            "queue_duration": 12, "hold_duration": 3}});
    let (status, session) = post(http, &format!("{sim}/_sim/scenarios"), scenario).await;
    assert!(status.is_success(), "call {i}: {status} {session}");
    let id = session["id"].as_i64().expect("a session id");
    // The agent answers in the platform's softphone: the tenant's 10 requests per second are
    // the gateway's alone (it reads each session's details within them).
    for event in ["answer", "customer_hang_up", "wrap_up_done"] {
        let (status, body) = post(http, &format!("{sim}/_sim/calls/{id}/{event}"), json!({})).await;
        assert!(status.is_success(), "{event} {id}: {status} {body}");
    }
    id
}

/// A GET that must succeed: its JSON body. Any other answer, or no answer, fails the test with
/// the URL (a failed read must never look like "nothing there").
async fn get_json(http: &Client, url: &str, token: Option<&str>) -> Value {
    let mut request = http.get(url);
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let response = request
        .send()
        .await
        .unwrap_or_else(|e| panic!("GET {url}: {e}"));
    let status = response.status();
    let body = response.json().await.unwrap_or(Value::Null);
    assert!(status.is_success(), "GET {url}: {status} {body}");
    body
}

fn list<'a>(kustomer: &'a Value, what: &str) -> &'a [Value] {
    kustomer[what].as_array().map_or(&[], Vec::as_slice)
}

/// How many times each external id (or other key) occurs.
fn counts<'a>(
    items: impl Iterator<Item = &'a Value>,
    key: impl Fn(&Value) -> Option<String>,
) -> HashMap<String, usize> {
    let mut counts = HashMap::new();
    for item in items {
        if let Some(k) = key(item) {
            *counts.entry(k).or_insert(0) += 1;
        }
    }
    counts
}

/// The simulator on loopback, with the Kustomer org's budget of `kustomer_per_minute`:
/// its API's URL, its webhooks, and what stops it when dropped.
async fn simulator(
    kustomer_per_minute: u32,
) -> (
    String,
    adapter_simulator::webhooks::Webhooks,
    tokio::sync::oneshot::Sender<()>,
) {
    let mut sim_config = adapter_simulator::config::Config::for_tests(
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../host"),
    );
    sim_config.kustomer_rate_limit = kustomer_per_minute;
    let simulator = Simulator::start(sim_config).await.expect("simulator");
    let (sim_api, _) = simulator.local_addrs().expect("simulator address");
    let hooks = simulator.webhooks();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(simulator.serve(async {
        let _ = stopped.await;
    }));
    (format!("http://{sim_api}"), hooks, stop)
}

/// A gateway with the CRM sync on, its Kustomer budget `kustomer_per_minute`, not started.
fn crm_gateway(
    data_dir: &Path,
    store_dir: &Path,
    sim: &str,
    kustomer_per_minute: u32,
) -> GatewayProcess {
    let limit = kustomer_per_minute.to_string();
    GatewayProcess::new(
        data_dir,
        store_dir,
        &[
            "--ccai-url",
            sim,
            "--kustomer-url",
            sim,
            "--kustomer-rate-limit",
            &limit,
            "--crm-workers",
            &CRM_WORKERS.to_string(),
            "--admin-emails",
            ADMIN,
            "--dev-sign-in",
        ],
        &[
            ("GATEWAY_CALL_WEBHOOK_USER", HOOK_USER),
            ("GATEWAY_CALL_WEBHOOK_PASSWORD", HOOK_PASSWORD),
            ("GATEWAY_CHAT_WEBHOOK_USER", HOOK_USER),
            ("GATEWAY_CHAT_WEBHOOK_PASSWORD", HOOK_PASSWORD),
            ("GATEWAY_CCAI_EXTENSION", "true"),
        ],
    )
}

fn data_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("adapter-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let _ = std::fs::remove_file(dir.with_extension("log"));
    dir
}

/// Points the simulator's session webhooks at `gw`, provisions the Kustomer custom fields
/// (sessions must start after it to get the record fields) and makes the agents Available.
async fn provision(
    http: &Client,
    sim: &str,
    gw: &str,
    hooks: &adapter_simulator::webhooks::Webhooks,
) {
    hooks.set_target(Some(Target {
        url: format!("{gw}/webhooks/ccai"),
        user: HOOK_USER.into(),
        password: HOOK_PASSWORD.into(),
        chat_user: HOOK_USER.into(),
        chat_password: HOOK_PASSWORD.into(),
    }));
    let token = admin_token(http, gw).await;
    let (status, body) = {
        let response = http
            .post(format!("{gw}/api/v1/crm/custom-fields"))
            .bearer_auth(&token)
            .send()
            .await
            .expect("custom fields");
        let status = response.status();
        (
            status,
            response.json::<Value>().await.unwrap_or(Value::Null),
        )
    };
    assert!(status.is_success(), "custom fields: {status} {body}");
    // Sessions must start after the provisioning to get the record fields: wait until this
    // machine's clock (the simulator's and the gateway's) has passed the provisioning time.
    let provisioned_at = body["provisioned_at_ms"]
        .as_i64()
        .expect("the provisioning time");
    while now_ms() <= provisioned_at {
        tokio::task::yield_now().await;
    }
    for (agent, _) in AGENTS {
        let (status, body) = post(
            http,
            &format!("{sim}/_sim/ccai/agents/{agent}/status"),
            json!({"status_id": 0}),
        )
        .await;
        assert!(status.is_success(), "agent {agent} Available: {body}");
    }
}

/// The burst: the three agents take calls back to back (SESSIONS in all); the gateway writes
/// behind.
struct Burst {
    drivers: tokio::task::JoinSet<Vec<(i64, usize, &'static str)>>,
    driven: Arc<AtomicUsize>,
    sessions: Vec<(i64, usize, &'static str)>,
}

impl Burst {
    fn start(http: &Client, sim: &str) -> Burst {
        let next = Arc::new(AtomicUsize::new(0));
        let driven = Arc::new(AtomicUsize::new(0));
        let mut drivers = tokio::task::JoinSet::new();
        for (agent, user) in AGENTS {
            let (http, sim, next, driven) =
                (http.clone(), sim.to_owned(), next.clone(), driven.clone());
            drivers.spawn(async move {
                let mut mine = Vec::new();
                loop {
                    let i = next.fetch_add(1, Ordering::SeqCst);
                    if i >= SESSIONS {
                        return mine;
                    }
                    let id = call(&http, &sim, agent, i).await;
                    mine.push((id, i, user));
                    driven.fetch_add(1, Ordering::SeqCst);
                }
            });
        }
        Burst {
            drivers,
            driven,
            sessions: Vec::new(),
        }
    }

    fn driven(&self) -> usize {
        self.driven.load(Ordering::SeqCst)
    }

    /// Waits until `at` sessions have been driven.
    async fn until(&mut self, at: usize) {
        let deadline = Instant::now() + Duration::from_secs(120);
        while self.driven() < at {
            assert!(
                Instant::now() < deadline && !self.drivers.is_empty(),
                "the burst stalled at {} sessions",
                self.driven()
            );
            match self.drivers.try_join_next() {
                Some(Ok(done)) => self.sessions.extend(done),
                Some(Err(error)) => panic!("a driver failed: {error}"),
                None => {}
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// Every session driven: (session id, its index, the Kustomer user of its agent).
    async fn finish(mut self) -> Vec<(i64, usize, &'static str)> {
        while let Some(done) = self.drivers.join_next().await {
            self.sessions.extend(done.expect("a driver panicked"));
        }
        assert_eq!(self.sessions.len(), SESSIONS);
        self.sessions
    }
}

/// Waits until every webhook was delivered (the log keeps the last 1,000: none pending there
/// means the queue is empty) and the outbox is empty, with no dead letter; the outbox's counts.
async fn drained(http: &Client, sim: &str, gw: &str, log_tail: impl Fn() -> String) -> Value {
    let token = admin_token(http, gw).await;
    let deadline = Instant::now() + Duration::from_secs(240);
    let outbox = loop {
        let state = get_json(http, &format!("{sim}/_sim/state"), None).await;
        let deliveries = state["webhooks"]
            .as_array()
            .cloned()
            .expect("the simulator's webhook log");
        let pending = deliveries
            .iter()
            .filter(|d| d["state"] == "pending")
            .count();
        let outbox = get_json(http, &format!("{gw}/api/v1/crm/outbox"), Some(&token)).await;
        assert!(
            outbox["inbox"].is_number() && outbox["pending"].is_number(),
            "the outbox's counts: {outbox}"
        );
        if pending == 0 && outbox["inbox"] == 0 && outbox["pending"] == 0 {
            let failed: Vec<&Value> = deliveries
                .iter()
                .filter(|d| d["state"] != "delivered")
                .collect();
            assert!(failed.is_empty(), "webhooks not delivered: {failed:?}");
            break outbox;
        }
        assert!(
            Instant::now() < deadline,
            "not drained within 240 s: {pending} webhooks pending, outbox {outbox}\n{}",
            log_tail()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let dead = get_json(http, &format!("{gw}/api/v1/crm/dead-letters"), Some(&token)).await;
    assert_eq!(outbox["dead"], 0, "dead letters: {dead}");
    outbox
}

/// Every Kustomer record the sessions must produce is there exactly once, and nothing else;
/// the number of attachments left behind.
///
/// Kustomer's API cannot find an attachment again (attachments have no external id): one that
/// Kustomer created just before the gateway was killed, before the gateway recorded it, stays
/// behind without its file and is referenced by nothing, and the retry creates another. Such
/// orphans are allowed, at most `orphans_at_most` (one per operation in flight at a kill),
/// never uploaded and never referenced by a message.
fn assert_written_exactly_once(
    state: &Value,
    sessions: &[(i64, usize, &str)],
    orphans_at_most: usize,
) -> usize {
    let k = &state["kustomer"];
    let text = |key: &'static str| move |v: &Value| v[key].as_str().map(str::to_owned);
    let customers_by_phone = counts(list(k, "customers").iter(), |c| {
        c["phones"]
            .as_array()
            .and_then(|p| p.first())
            .and_then(Value::as_str)
            .map(str::to_owned)
    });
    let conversations = counts(list(k, "conversations").iter(), text("externalId"));
    let messages = counts(list(k, "messages").iter(), text("externalId"));
    let notes = counts(list(k, "notes").iter(), text("externalId"));
    let (uploaded, orphans): (Vec<&Value>, Vec<&Value>) = list(k, "attachments")
        .iter()
        .partition(|a| a["uploaded"] == true);
    let attachments = counts(uploaded.iter().copied(), text("name"));
    let find = |what: &str, external: &str| {
        list(k, what)
            .iter()
            .find(|x| x["externalId"].as_str() == Some(external))
    };
    let mut problems: BTreeMap<i64, Vec<String>> = BTreeMap::new();
    for (id, i, user) in sessions {
        let mut wrong = Vec::new();
        let mut once = |what: &str, key: String, counts: &HashMap<String, usize>| match counts
            .get(&key)
            .copied()
            .unwrap_or(0)
        {
            1 => {}
            0 => wrong.push(format!("{what} {key} missing")),
            n => wrong.push(format!("{what} {key} written {n} times")),
        };
        let number = format!("+1415556{i:04}");
        once("customer", number.clone(), &customers_by_phone);
        once("conversation", format!("ccai-call-{id}"), &conversations);
        once("message", format!("ccai-call-{id}-message"), &messages);
        once("note", format!("ccai-call-{id}-phone"), &notes);
        once("attachment", format!("call-{id}.wav"), &attachments);
        let customer = list(k, "customers")
            .iter()
            .find(|c| c["phones"][0].as_str() == Some(number.as_str()));
        if let Some(c) = customer {
            if c["assignedUsers"] != json!([user]) {
                wrong.push(format!(
                    "customer not assigned to {user}: {}",
                    c["assignedUsers"]
                ));
            }
        }
        if let Some(c) = find("conversations", &format!("ccai-call-{id}")) {
            if c["assignedUsers"] != json!([user]) {
                wrong.push(format!(
                    "conversation not assigned to {user}: {}",
                    c["assignedUsers"]
                ));
            }
            if customer.is_some_and(|cu| cu["id"] != c["customer"]) {
                wrong.push("conversation of another customer".into());
            }
            for (what, external) in [
                ("messages", format!("ccai-call-{id}-message")),
                ("notes", format!("ccai-call-{id}-phone")),
            ] {
                if find(what, &external).is_some_and(|m| m["conversation"] != c["id"]) {
                    wrong.push(format!("{external} in another conversation"));
                }
            }
        }
        if let Some(m) = find("messages", &format!("ccai-call-{id}-message")) {
            if !m["custom"]["ccaiCallDurationNum"].is_number() {
                wrong.push(format!("durations not on the message: {}", m["custom"]));
            }
            let names: Vec<&Value> = m["attachments"]
                .as_array()
                .map_or(Vec::new(), |a| a.iter().map(|x| &x["name"]).collect());
            if names != [&json!(format!("call-{id}.wav"))] {
                wrong.push(format!("recording attachments: {names:?}"));
            }
            let referenced = &m["attachments"][0]["_id"];
            if !uploaded.iter().any(|a| &a["id"] == referenced) {
                wrong.push(format!(
                    "the recording's attachment {referenced} has no file"
                ));
            }
        }
        if !wrong.is_empty() {
            problems.insert(*id, wrong);
        }
    }
    let totals = json!({
        "customers": list(k, "customers").len(), "conversations": list(k, "conversations").len(),
        "messages": list(k, "messages").len(), "notes": list(k, "notes").len(),
        "attachments": uploaded.len(),
    });
    assert!(
        problems.is_empty(),
        "{} of {SESSIONS} sessions are not written exactly once (totals {totals}):\n{}",
        problems.len(),
        problems
            .iter()
            .take(50)
            .map(|(id, wrong)| format!("  session {id}: {}", wrong.join("; ")))
            .collect::<Vec<_>>()
            .join("\n")
    );
    // Nothing else either: no record that belongs to no session.
    assert_eq!(
        totals,
        json!({"customers": SESSIONS, "conversations": SESSIONS, "messages": SESSIONS,
            "notes": SESSIONS, "attachments": SESSIONS}),
        "nothing written beyond the sessions' records"
    );
    let names: Vec<String> = sessions
        .iter()
        .map(|(id, _, _)| format!("call-{id}.wav"))
        .collect();
    assert!(
        orphans.len() <= orphans_at_most
            && orphans
                .iter()
                .all(|a| a["name"].as_str().is_some_and(|n| names.iter().any(|x| x == n))),
        "attachments without a file beyond what the kills can leave ({orphans_at_most}): {orphans:?}"
    );
    orphans.len()
}

/// Every create Kustomer accepted is one of the sessions' records: none was refused (as a
/// duplicate, or over the budget).
async fn assert_kustomer_refused_nothing(http: &Client, sim: &str) {
    let writes = get_json(http, &format!("{sim}/_sim/kustomer/writes"), None).await;
    let writes = writes.as_array().expect("Kustomer's write log is a list");
    assert!(
        writes.len() >= 5 * SESSIONS,
        "Kustomer's write log has the sessions' creates: {} writes",
        writes.len()
    );
    let refused: Vec<&Value> = writes
        .iter()
        .filter(|w| w["status"].as_u64().is_none_or(|s| s >= 400))
        .collect();
    assert!(refused.is_empty(), "writes Kustomer refused: {refused:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn five_hundred_calls_with_the_gateway_killed_twice_are_written_exactly_once() {
    let _serial = SERIAL.lock().await;
    let started = Instant::now();
    // The budget is not what this test is about (the 429 storm test is).
    let (sim, hooks, _stop_sim) = simulator(1_000_000).await;
    let data_dir = data_dir("crm-crash");
    let http = Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .expect("client");
    let mut gateway = crm_gateway(&data_dir, &data_dir, &sim, 1_000_000);
    gateway.start();
    gateway.ready(&http).await;
    let gw = gateway.url();
    provision(&http, &sim, &gw, &hooks).await;

    let mut burst = Burst::start(&http, &sim);
    for (kill, at) in KILL_AT.iter().enumerate() {
        burst.until(*at).await;
        gateway.kill();
        eprintln!(
            "kill {}: gateway SIGKILLed after {} sessions, {:.1} s in",
            kill + 1,
            burst.driven(),
            started.elapsed().as_secs_f64()
        );
        gateway.start();
        gateway.ready(&http).await;
    }
    let sessions = burst.finish().await;
    let burst = started.elapsed();
    eprintln!("{SESSIONS} sessions driven in {:.1} s", burst.as_secs_f64());
    let outbox = drained(&http, &sim, &gw, || gateway.log_tail()).await;
    eprintln!(
        "drained {:.1} s after the burst: {outbox}",
        (started.elapsed() - burst).as_secs_f64()
    );
    let state = get_json(&http, &format!("{sim}/_sim/state"), None).await;
    let orphans = assert_written_exactly_once(&state, &sessions, KILL_AT.len() * CRM_WORKERS);
    assert_kustomer_refused_nothing(&http, &sim).await;
    eprintln!(
        "crash test done in {:.1} s ({orphans} attachment(s) left behind by the kills)",
        started.elapsed().as_secs_f64()
    );
    gateway.remove_files();
}

/// HAProxy (Debian's; `scripts/bootstrap.sh` installs it) in front of gateway replicas: the
/// fewest connections first (streams last all day), health-checked every 200 ms, a request whose replica refused the connection or died
/// before answering sent to the other one (webhooks are deduplicated, so a retried one counts
/// once), WebSockets passed through. Stopped when dropped.
struct LoadBalancer {
    child: Child,
    url: String,
}

impl LoadBalancer {
    async fn start(replicas: &[&GatewayProcess], folder: &Path, http: &Client) -> LoadBalancer {
        let binary = ["/usr/sbin/haproxy", "/usr/local/sbin/haproxy"]
            .into_iter()
            .map(PathBuf::from)
            .find(|p| p.exists())
            .expect("HAProxy is installed (scripts/bootstrap.sh installs it)");
        let addr = support::process::free_addr();
        let servers: String = replicas
            .iter()
            .enumerate()
            .map(|(i, r)| format!("    server gateway-{i} {} check\n", r.addr))
            .collect();
        let config = format!(
            "defaults
    mode http
    timeout connect 1s
    timeout client 60s
    timeout server 60s
    timeout tunnel 1h
    timeout check 2s
    retries 3
    option redispatch 1
    retry-on conn-failure empty-response
frontend adapter
    bind {addr}
    default_backend gateways
backend gateways
    balance leastconn
    option httpchk GET /healthz
    default-server inter 200ms fall 1 rise 2
{servers}"
        );
        let path = folder.join("haproxy.cfg");
        std::fs::create_dir_all(folder).expect("the load balancer's folder");
        std::fs::write(&path, config).expect("the load balancer's configuration");
        let child = Command::new(binary)
            .arg("-f")
            .arg(&path)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("HAProxy starts");
        let url = format!("http://{addr}");
        let deadline = Instant::now() + Duration::from_secs(10);
        while !http
            .get(format!("{url}/healthz"))
            .send()
            .await
            .is_ok_and(|r| r.status().is_success())
        {
            assert!(
                Instant::now() < deadline,
                "HAProxy did not answer within 10 s"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        LoadBalancer { child, url }
    }
}

impl Drop for LoadBalancer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// What an agent's adapter received on its event stream, across its connections: when, on
/// which connection (counted from 1), and the message.
type Received = Arc<Mutex<Vec<(Instant, usize, Value)>>>;

/// An agent's adapter holding its event stream through the load balancer, and opening it again
/// (resuming after the last number it saw) whenever it closes or breaks, as the widget does; or
/// when told to reload, as an agent reloading the page.
struct Holder {
    agent: i64,
    received: Received,
    /// When a connection broke (not reloaded).
    broken: Arc<Mutex<Vec<Instant>>>,
    reload: Arc<tokio::sync::Notify>,
    task: tokio::task::JoinHandle<()>,
}

impl Holder {
    fn start(agent: i64, url: &str, token: String) -> Holder {
        let url = format!("{}/api/v1/events", url.replacen("http://", "ws://", 1));
        let received: Received = Arc::default();
        let broken: Arc<Mutex<Vec<Instant>>> = Arc::default();
        let reload: Arc<tokio::sync::Notify> = Arc::default();
        let task = tokio::spawn({
            let (received, broken, reload) = (received.clone(), broken.clone(), reload.clone());
            async move {
                let mut connection = 0;
                loop {
                    let resume = received.lock().unwrap().iter().rev().find_map(|(_, _, m)| {
                        (m["type"] == "event" || m["type"] == "snapshot").then(|| {
                            (
                                m["epoch"].as_u64().unwrap_or(0),
                                m["seq"].as_u64().unwrap_or(0),
                            )
                        })
                    });
                    let Ok((mut socket, _)) = connect_async(&url).await else {
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    };
                    let auth =
                        adapter_core::agent_events::StreamAuth::new(token.clone(), resume, None);
                    let text = serde_json::to_string(&auth).expect("the auth message encodes");
                    if socket.send(Message::Text(text.into())).await.is_err() {
                        continue;
                    }
                    connection += 1;
                    let reloaded = loop {
                        tokio::select! {
                            message = socket.next() => match message {
                                Some(Ok(Message::Text(text))) => {
                                    let value: Value = serde_json::from_str(&text)
                                        .expect("stream messages are JSON");
                                    received.lock().unwrap().push((Instant::now(), connection, value));
                                }
                                Some(Ok(_)) => {}
                                Some(Err(_)) | None => break false,
                            },
                            _ = reload.notified() => break true,
                        }
                    };
                    if reloaded {
                        let _ = socket.close(None).await;
                    } else {
                        broken.lock().unwrap().push(Instant::now());
                        tokio::time::sleep(Duration::from_millis(50)).await;
                    }
                }
            }
        });
        Holder {
            agent,
            received,
            broken,
            reload,
            task,
        }
    }

    fn connections(&self) -> usize {
        self.received
            .lock()
            .unwrap()
            .last()
            .map_or(0, |(_, connection, _)| *connection)
    }

    /// Opens the stream again (the load balancer sends it to the replica with the fewest
    /// connections) and waits until the new connection said something.
    async fn reload(&self) {
        let before = self.connections();
        self.reload.notify_one();
        let deadline = Instant::now() + Duration::from_secs(10);
        while self.connections() == before {
            assert!(
                Instant::now() < deadline,
                "agent {}'s stream did not come back after a reload",
                self.agent
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

/// How many agents' streams `replica` holds (its `gateway_stream_sockets` gauge).
async fn streams_on(http: &Client, replica: &GatewayProcess) -> u64 {
    let text = http
        .get(format!("{}/metrics", replica.url()))
        .send()
        .await
        .expect("the replica's metrics")
        .text()
        .await
        .expect("the replica's metrics");
    text.lines()
        .find_map(|line| line.strip_prefix("gateway_stream_sockets "))
        .and_then(|value| value.trim().parse::<f64>().ok())
        .map_or(0, |value| value as u64)
}

/// Signs an agent in (through the load balancer: the session is in the shared store).
async fn sign_in(http: &Client, gateway: &str, email: &str, kustomer_user: &str) -> String {
    let (status, body) = post(
        http,
        &format!("{gateway}/api/v1/sessions"),
        json!({"email": email, "kustomer_user": {"id": kustomer_user, "email": email}}),
    )
    .await;
    assert!(status.is_success(), "sign-in of {email}: {status} {body}");
    body["token"].as_str().expect("a token").to_owned()
}

/// An agent's stream ran without a gap or a repeat across its connections, on one epoch, and
/// showed each of `numbers` (its calls) ending; the number of connections it took.
fn assert_stream_complete(
    agent: i64,
    received: &[(Instant, usize, Value)],
    numbers: &[String],
) -> usize {
    let mut last: Option<u64> = None;
    let mut epoch: Option<u64> = None;
    let mut ended: HashMap<&str, usize> = HashMap::new();
    for (index, (_, connection, message)) in received.iter().enumerate() {
        match message["type"].as_str() {
            Some("snapshot") => {
                assert_eq!(
                    index, 0,
                    "agent {agent}: only the first connection starts from a snapshot (connection {connection})"
                );
                last = message["seq"].as_u64();
                epoch = message["epoch"].as_u64();
            }
            Some("event") => {
                let seq = message["seq"].as_u64().expect("a sequence number");
                assert_eq!(message["epoch"].as_u64(), epoch, "agent {agent}: one epoch");
                assert_eq!(
                    Some(seq),
                    last.map(|l| l + 1),
                    "agent {agent}, message {index} (connection {connection}): no gap, no repeat"
                );
                last = Some(seq);
                let event = &message["event"];
                if event["kind"] == "call" && event["state"] == "ended" {
                    *ended
                        .entry(event["number"].as_str().unwrap_or("-"))
                        .or_insert(0) += 1;
                }
            }
            _ => {}
        }
    }
    let missing: Vec<&String> = numbers
        .iter()
        .filter(|n| !ended.contains_key(n.as_str()))
        .collect();
    assert!(
        missing.is_empty(),
        "agent {agent}: calls whose end never reached the stream: {missing:?}"
    );
    received.last().map_or(0, |(_, connection, _)| *connection)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_replicas_behind_haproxy_lose_nothing_when_one_is_killed_twice() {
    if std::env::var_os("GATEWAY_TEST_DATABASE_URL").is_none() {
        eprintln!(
            "skipped: replicas share a PostgreSQL store (scripts/test.sh runs this test again on its PostgreSQL cluster)"
        );
        return;
    }
    let _serial = SERIAL.lock().await;
    let started = Instant::now();
    // The org's budget binds: the replicas must share it. Each keeps a little under Kustomer's
    // own count, for a request counted at the very end of a minute that arrives in the next.
    let (sim, hooks, _stop_sim) = simulator(KUSTOMER_PER_MINUTE).await;
    let (dir_a, dir_b) = (data_dir("failover-a"), data_dir("failover-b"));
    let http = Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .expect("client");
    let mut a = crm_gateway(&dir_a, &dir_a, &sim, KUSTOMER_PER_MINUTE - 100);
    let mut b = crm_gateway(&dir_b, &dir_a, &sim, KUSTOMER_PER_MINUTE - 100);
    a.start();
    a.ready(&http).await;
    b.start();
    b.ready(&http).await;
    let lb = LoadBalancer::start(&[&a, &b], &dir_b.with_extension("lb"), &http).await;
    provision(&http, &sim, &lb.url, &hooks).await;

    let emails = ["ada.lovelace@example.com", ADMIN, "alan.turing@example.com"];
    let mut streams = Vec::new();
    for ((agent, user), email) in AGENTS.into_iter().zip(emails) {
        let token = sign_in(&http, &lb.url, email, user).await;
        streams.push(Holder::start(agent, &lb.url, token));
    }
    // Every stream is open before the first call.
    for holder in &streams {
        let deadline = Instant::now() + Duration::from_secs(10);
        while holder.connections() == 0 {
            assert!(
                Instant::now() < deadline,
                "agent {}'s stream never opened",
                holder.agent
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    let mut burst = Burst::start(&http, &sim);
    let mut kills = Vec::new();
    for (kill, at) in KILL_AT.iter().enumerate() {
        burst.until(*at).await;
        // Taken before the kill: a stream may see its connection break before kill() returns.
        kills.push(Instant::now());
        a.kill();
        eprintln!(
            "failover, kill {}: replica A SIGKILLed after {} sessions, {:.1} s in",
            kill + 1,
            burst.driven(),
            started.elapsed().as_secs_f64()
        );
        a.start();
        a.ready(&http).await;
        if kill + 1 < KILL_AT.len() {
            // The streams it held are on replica B now. Once HAProxy sees A again (two health
            // checks), agents reload their pages until a stream is on A (its own count of
            // streams says so), so that the next kill breaks streams again.
            tokio::time::sleep(Duration::from_millis(1_000)).await;
            let mut reloads = 0;
            while streams_on(&http, &a).await == 0 {
                assert!(reloads < 12, "no reloaded stream went to replica A");
                streams[reloads % streams.len()].reload().await;
                reloads += 1;
            }
        }
    }
    let sessions = burst.finish().await;
    let burst = started.elapsed();
    eprintln!(
        "failover: {SESSIONS} sessions driven in {:.1} s",
        burst.as_secs_f64()
    );
    let outbox = drained(&http, &sim, &lb.url, || {
        format!("replica A:\n{}\nreplica B:\n{}", a.log_tail(), b.log_tail())
    })
    .await;
    eprintln!(
        "failover: drained {:.1} s after the burst: {outbox}",
        (started.elapsed() - burst).as_secs_f64()
    );
    let state = get_json(&http, &format!("{sim}/_sim/state"), None).await;
    let orphans = assert_written_exactly_once(&state, &sessions, KILL_AT.len() * CRM_WORKERS);
    assert_kustomer_refused_nothing(&http, &sim).await;
    assert_eq!(
        (
            &state["ccai"]["rate_limited"],
            &state["kustomer"]["rate_limited"]
        ),
        (&json!(0), &json!(0)),
        "the replicas together kept to the tenant's and the org's budgets"
    );

    // Every stream got every event, in order, across its reconnections; a stream that was on
    // the killed replica resumed on the other when its new connection said something.
    let mut events = 0;
    let mut broken_at_kill = vec![0; kills.len()];
    for holder in streams {
        holder.task.abort();
        let agent = holder.agent;
        let received = holder.received.lock().unwrap();
        let numbers: Vec<String> = sessions
            .iter()
            .filter(|(_, _, user)| AGENTS.iter().any(|(a, u)| *a == agent && u == user))
            .map(|(_, i, _)| format!("+1415556{i:04}"))
            .collect();
        let connections = assert_stream_complete(agent, &received, &numbers);
        // Each connection a kill broke, and the first message of the one that replaced it.
        let mut resumed = Vec::new();
        for broke in holder.broken.lock().unwrap().iter() {
            let Some(k) = kills
                .iter()
                .rposition(|kill| kill <= broke && *broke - *kill < Duration::from_secs(5))
            else {
                continue;
            };
            broken_at_kill[k] += 1;
            if let Some((at, _, _)) = received.iter().find(|(at, _, _)| at > broke) {
                resumed.push(format!(
                    "kill {}: {} ms",
                    k + 1,
                    (*at - kills[k]).as_millis()
                ));
            }
        }
        let agent_events = received
            .iter()
            .filter(|(_, _, m)| m["type"] == "event")
            .count();
        events += agent_events;
        eprintln!(
            "failover: agent {agent}: {agent_events} events over {connections} connection(s); broken by a kill, first message after it on the next: [{}]",
            resumed.join(", ")
        );
    }
    assert!(
        broken_at_kill.iter().all(|broken| *broken > 0),
        "each kill broke at least one agent's stream (else the streams' failover went untested): {broken_at_kill:?}"
    );
    eprintln!(
        "failover test done in {:.1} s: {events} stream events, 0 gaps, 0 repeats, 0 duplicate records \
         ({orphans} attachment(s) left behind by the kills), 429s: 0",
        started.elapsed().as_secs_f64()
    );
    drop(lb);
    a.remove_files();
    b.remove_files();
    let _ = std::fs::remove_dir_all(dir_b.with_extension("lb"));
}
