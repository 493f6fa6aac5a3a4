//! Crash test of the CRM sync: 500 answered IVR calls in a burst, the real `adapter-gateway`
//! binary killed with SIGKILL twice while it writes them and restarted on the same port and
//! data directory. Every Kustomer record the calls must produce has to be there exactly once:
//! per session one customer, one conversation, the call's message, the recording's message and
//! its attachment, the phone number note, both assignments and the durations.
//!
//! The simulator runs in this process (its CCAI side sends the session webhooks to the gateway
//! and retries them while the gateway is down; its Kustomer side records every write).

use std::{
    collections::{BTreeMap, HashMap},
    net::SocketAddr,
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    sync::{
        atomic::{AtomicUsize, Ordering},
        Arc,
    },
    time::Duration,
};

use adapter_simulator::{webhooks::Target, Simulator};
use reqwest::{Client, StatusCode};
use serde_json::{json, Value};
use tokio::time::Instant;

const SESSIONS: usize = 500;
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

/// The gateway binary as a child process; killed (SIGKILL) when dropped.
struct GatewayProcess {
    child: Option<Child>,
    addr: SocketAddr,
    data_dir: PathBuf,
    sim: String,
    log: PathBuf,
    starts: usize,
}

impl GatewayProcess {
    fn spawn(addr: SocketAddr, data_dir: &Path, sim: &str) -> GatewayProcess {
        let mut process = GatewayProcess {
            child: None,
            addr,
            data_dir: data_dir.to_owned(),
            sim: sim.to_owned(),
            log: data_dir.with_extension("log"),
            starts: 0,
        };
        process.start();
        process
    }

    fn start(&mut self) {
        self.starts += 1;
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .expect("gateway log file");
        let child = Command::new(env!("CARGO_BIN_EXE_adapter-gateway"))
            .arg("--listen")
            .arg(self.addr.to_string())
            .arg("--data-dir")
            .arg(&self.data_dir)
            // The same store on every restart: SQLite in the folder, or the test suites'
            // PostgreSQL database for it.
            .env(
                "GATEWAY_DATABASE_URL",
                adapter_gateway::store::DatabaseUrl::for_tests(&self.data_dir).expose(),
            )
            .args(["--ccai-url", &self.sim, "--kustomer-url", &self.sim])
            .args(["--kustomer-rate-limit", "1000000", "--crm-workers", "8"])
            .args(["--admin-emails", ADMIN, "--dev-sign-in"])
            .env("GATEWAY_CALL_WEBHOOK_USER", HOOK_USER)
            .env("GATEWAY_CALL_WEBHOOK_PASSWORD", HOOK_PASSWORD)
            .env("GATEWAY_CHAT_WEBHOOK_USER", HOOK_USER)
            .env("GATEWAY_CHAT_WEBHOOK_PASSWORD", HOOK_PASSWORD)
            .env("GATEWAY_CCAI_EXTENSION", "true")
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("gateway log file"))
            .stderr(log)
            .spawn()
            .expect("the adapter-gateway binary starts");
        self.child = Some(child);
    }

    /// SIGKILL, reaped: the gateway must still be running (not exited on its own) when killed.
    fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let exited = child.try_wait().expect("the gateway's state");
            assert!(
                exited.is_none(),
                "the gateway exited on its own before kill (start {}): {exited:?}\n{}",
                self.starts,
                self.log_tail()
            );
            child.kill().expect("SIGKILL the gateway");
            let status = child.wait().expect("reap the gateway");
            assert!(!status.success(), "killed, not exited: {status}");
        }
    }

    fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The end of the gateway's log, for failure messages.
    fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(40)..].join("\n")
    }

    /// Waits until the gateway answers `/healthz`.
    async fn ready(&mut self, http: &Client) {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(child) = self.child.as_mut() {
                if let Ok(Some(status)) = child.try_wait() {
                    panic!(
                        "the gateway exited at start {}: {status}\n{}",
                        self.starts,
                        self.log_tail()
                    );
                }
            }
            let ok = http
                .get(format!("{}/healthz", self.url()))
                .send()
                .await
                .is_ok_and(|r| r.status().is_success());
            if ok {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "the gateway did not answer within 30 s of start {}\n{}",
                self.starts,
                self.log_tail()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

impl Drop for GatewayProcess {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("a clock after 1970")
        .as_millis() as i64
}

/// A free loopback port (bound, read, released): the gateway gets it again at every restart.
fn free_addr() -> SocketAddr {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("a free port");
    listener.local_addr().expect("its address")
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn five_hundred_calls_with_the_gateway_killed_twice_are_written_exactly_once() {
    let started = Instant::now();
    let mut sim_config = adapter_simulator::config::Config::for_tests(
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../host"),
    );
    // The budget is not what this test is about (the 429 storm test is).
    sim_config.kustomer_rate_limit = 1_000_000;
    let simulator = Simulator::start(sim_config).await.expect("simulator");
    let (sim_api, _) = simulator.local_addrs().expect("simulator address");
    let hooks = simulator.webhooks();
    let (_sim_stop, sim_stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(simulator.serve(async {
        let _ = sim_stopped.await;
    }));
    let sim = format!("http://{sim_api}");

    let data_dir = std::env::temp_dir().join(format!("adapter-crm-crash-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&data_dir);
    let _ = std::fs::remove_file(data_dir.with_extension("log"));
    let http = Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .expect("client");
    let mut gateway = GatewayProcess::spawn(free_addr(), &data_dir, &sim);
    gateway.ready(&http).await;
    let gw = gateway.url();
    hooks.set_target(Some(Target {
        url: format!("{gw}/webhooks/ccai"),
        user: HOOK_USER.into(),
        password: HOOK_PASSWORD.into(),
        chat_user: HOOK_USER.into(),
        chat_password: HOOK_PASSWORD.into(),
    }));
    let token = admin_token(&http, &gw).await;
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
            &http,
            &format!("{sim}/_sim/ccai/agents/{agent}/status"),
            json!({"status_id": 0}),
        )
        .await;
        assert!(status.is_success(), "agent {agent} Available: {body}");
    }

    // The burst: the three agents take calls back to back; the gateway writes behind.
    let next = Arc::new(AtomicUsize::new(0));
    let driven = Arc::new(AtomicUsize::new(0));
    let mut drivers = tokio::task::JoinSet::new();
    for (agent, user) in AGENTS {
        let (http, sim, next, driven) = (http.clone(), sim.clone(), next.clone(), driven.clone());
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
    let mut sessions: Vec<(i64, usize, &str)> = Vec::new();
    for (kill, at) in KILL_AT.iter().enumerate() {
        let deadline = Instant::now() + Duration::from_secs(120);
        while driven.load(Ordering::SeqCst) < *at {
            assert!(
                Instant::now() < deadline && !drivers.is_empty(),
                "the burst stalled at {} sessions",
                driven.load(Ordering::SeqCst)
            );
            match drivers.try_join_next() {
                Some(Ok(done)) => sessions.extend(done),
                Some(Err(error)) => panic!("a driver failed: {error}"),
                None => {}
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        gateway.kill();
        eprintln!(
            "kill {}: gateway SIGKILLed after {} sessions, {:.1} s in",
            kill + 1,
            driven.load(Ordering::SeqCst),
            started.elapsed().as_secs_f64()
        );
        gateway.start();
        gateway.ready(&http).await;
    }
    while let Some(done) = drivers.join_next().await {
        sessions.extend(done.expect("a driver panicked"));
    }
    assert_eq!(sessions.len(), SESSIONS);
    let burst = started.elapsed();
    eprintln!("{SESSIONS} sessions driven in {:.1} s", burst.as_secs_f64());

    // Drained: every webhook delivered (the log keeps the last 1,000: none pending there means
    // the queue is empty) and the outbox empty.
    let token = admin_token(&http, &gw).await;
    let deadline = Instant::now() + Duration::from_secs(120);
    let outbox = loop {
        let state = get_json(&http, &format!("{sim}/_sim/state"), None).await;
        let deliveries = state["webhooks"]
            .as_array()
            .cloned()
            .expect("the simulator's webhook log");
        let pending = deliveries
            .iter()
            .filter(|d| d["state"] == "pending")
            .count();
        let outbox = get_json(&http, &format!("{gw}/api/v1/crm/outbox"), Some(&token)).await;
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
            "not drained within 120 s: {pending} webhooks pending, outbox {outbox}\n{}",
            gateway.log_tail()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let dead = get_json(
        &http,
        &format!("{gw}/api/v1/crm/dead-letters"),
        Some(&token),
    )
    .await;
    assert_eq!(outbox["dead"], 0, "dead letters: {dead}");
    eprintln!(
        "drained {:.1} s after the burst: {outbox}",
        (started.elapsed() - burst).as_secs_f64()
    );

    // Exactly once, per session.
    let state = get_json(&http, &format!("{sim}/_sim/state"), None).await;
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
    let attachments = counts(list(k, "attachments").iter(), text("name"));
    let find = |what: &str, external: &str| {
        list(k, what)
            .iter()
            .find(|x| x["externalId"].as_str() == Some(external))
    };
    let mut problems: BTreeMap<i64, Vec<String>> = BTreeMap::new();
    for (id, i, user) in &sessions {
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
        once("message", format!("ccai-call-{id}-recording"), &messages);
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
                ("messages", format!("ccai-call-{id}-recording")),
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
        }
        if let Some(m) = find("messages", &format!("ccai-call-{id}-recording")) {
            let names: Vec<&Value> = m["attachments"]
                .as_array()
                .map_or(Vec::new(), |a| a.iter().map(|x| &x["name"]).collect());
            if names != [&json!(format!("call-{id}.wav"))] {
                wrong.push(format!("recording attachments: {names:?}"));
            }
        }
        if !wrong.is_empty() {
            problems.insert(*id, wrong);
        }
    }
    let totals = json!({
        "customers": list(k, "customers").len(), "conversations": list(k, "conversations").len(),
        "messages": list(k, "messages").len(), "notes": list(k, "notes").len(),
        "attachments": list(k, "attachments").len(),
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
        json!({"customers": SESSIONS, "conversations": SESSIONS, "messages": 2 * SESSIONS,
            "notes": SESSIONS, "attachments": SESSIONS}),
        "nothing written beyond the sessions' records"
    );
    assert!(
        list(k, "attachments").iter().all(|a| a["uploaded"] == true),
        "every attachment uploaded"
    );
    // Every create Kustomer accepted is one of those records: none was refused as a duplicate.
    let writes = get_json(&http, &format!("{sim}/_sim/kustomer/writes"), None).await;
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
    eprintln!(
        "crash test done in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    let _ = std::fs::remove_dir_all(&data_dir);
    let _ = std::fs::remove_file(data_dir.with_extension("log"));
}
