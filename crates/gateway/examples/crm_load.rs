//! Measures the CRM sync against the simulator's Kustomer (both in this process):
//!
//! 1. Kustomer API requests per standard inbound IVR call (answered, ended, recording on): a new
//!    caller (the process's first call, then a warm one), a returning caller appended to the
//!    Open conversation, then the same two with the record fields provisioned. Counted from the
//!    `/v1` requests the simulator recorded (`GET /_sim/state` → `requests`), by call.
//! 2. Sessions per minute the gateway sustains under the org budget: the simulated org gets
//!    `--per-window` requests per `--window-ms` (1,000 per 60,000 ms by default; a shorter
//!    window with the same rate, e.g. 100 per 6,000 ms, reaches steady state sooner), the
//!    gateway the same rate per minute; a backlog of calls is driven and the calls whose last
//!    Kustomer write (the call's message, written when it ends, with the recording) landed are
//!    counted per window.
//!
//! ```text
//! cargo run --release -p adapter-gateway --example crm_load -- [--minutes 3]
//!     [--per-window 1000] [--window-ms 60000] [--sessions N] [--returning] [--no-fields]
//!     [--workers 8]
//! ```

use std::{
    collections::BTreeMap,
    net::SocketAddr,
    path::PathBuf,
    sync::{
        atomic::{AtomicUsize, Ordering},
        Arc,
    },
    time::Duration,
};

use adapter_gateway::{
    config::{Config, Secret},
    Gateway,
};
use adapter_simulator::{webhooks::Target, Simulator};
use reqwest::{Client, StatusCode};
use serde_json::{json, Value};
use tokio::time::Instant;

const HOOK_USER: &str = "ccai-hooks";
const HOOK_PASSWORD: &str = "load-hook-secret";
const ADMIN: &str = "grace.hopper@example.com";
const AGENTS: [i64; 3] = [101, 102, 103];

type Failure = Box<dyn std::error::Error + Send + Sync>;

fn fail(message: impl Into<String>) -> Failure {
    message.into().into()
}

#[derive(Debug)]
struct Options {
    minutes: f64,
    per_window: u32,
    window_ms: i64,
    sessions: Option<usize>,
    returning: bool,
    fields: bool,
    workers: u32,
}

fn options() -> Result<Options, Failure> {
    let mut o = Options {
        minutes: 3.0,
        per_window: 1000,
        window_ms: 60_000,
        sessions: None,
        returning: false,
        fields: true,
        workers: 8,
    };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = || {
            args.next()
                .ok_or_else(|| fail(format!("{arg} needs a value")))
        };
        match arg.as_str() {
            "--minutes" => o.minutes = value()?.parse()?,
            "--per-window" => o.per_window = value()?.parse()?,
            "--window-ms" => o.window_ms = value()?.parse()?,
            "--sessions" => o.sessions = Some(value()?.parse()?),
            "--workers" => o.workers = value()?.parse()?,
            "--returning" => o.returning = true,
            "--no-fields" => o.fields = false,
            other => {
                return Err(fail(format!(
                    "unknown option {other} (see the file's header)"
                )))
            }
        }
    }
    if o.per_window == 0 || o.window_ms < 100 || o.minutes <= 0.0 {
        return Err(fail("--per-window > 0, --window-ms >= 100, --minutes > 0"));
    }
    Ok(o)
}

struct Stack {
    http: Client,
    gateway: String,
    sim: String,
    token: String,
    _stops: Vec<tokio::sync::oneshot::Sender<()>>,
}

impl Stack {
    async fn start(name: &str, per_minute: u32, workers: u32) -> Result<Stack, Failure> {
        let mut sim_config = adapter_simulator::config::Config::for_tests(
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../host"),
        );
        sim_config.kustomer_rate_limit = per_minute;
        let simulator = Simulator::start(sim_config).await?;
        let (sim_api, _) = simulator.local_addrs()?;
        let hooks = simulator.webhooks();
        let (sim_stop, sim_stopped) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(simulator.serve(async {
            let _ = sim_stopped.await;
        }));
        let dir =
            std::env::temp_dir().join(format!("adapter-crm-load-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let listen: SocketAddr = "127.0.0.1:0".parse()?;
        let mut config = Config::for_tests(listen, dir);
        config.ccai_url = format!("http://{sim_api}");
        config.call_webhook_user = Some(HOOK_USER.into());
        config.chat_webhook_user = Some(HOOK_USER.into());
        config.ccai_extension = true;
        config.call_webhook_password = Some(Secret::new(HOOK_PASSWORD));
        config.chat_webhook_password = Some(Secret::new(HOOK_PASSWORD));
        config.admin_emails = vec![ADMIN.into()];
        config.crm.crm_sync = true;
        config.crm.kustomer_url = format!("http://{sim_api}");
        config.crm.kustomer_rate_limit = per_minute;
        config.crm.crm_workers = workers;
        let gateway = Gateway::start(config).await?;
        let addr = gateway.local_addr()?;
        hooks.set_target(Some(Target {
            url: format!("http://{addr}/webhooks/ccai"),
            user: HOOK_USER.into(),
            password: HOOK_PASSWORD.into(),
            chat_user: HOOK_USER.into(),
            chat_password: HOOK_PASSWORD.into(),
        }));
        let (gw_stop, gw_stopped) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(gateway.serve(async {
            let _ = gw_stopped.await;
        }));
        let http = Client::builder().timeout(Duration::from_secs(30)).build()?;
        let gateway = format!("http://{addr}");
        let (status, body) =
            send(http.post(format!("{gateway}/api/v1/sessions")).json(
                &json!({"email": ADMIN, "kustomer_user": {"id": "kus-user-2", "email": ADMIN}}),
            ))
            .await?;
        let token = match (status.is_success(), body["token"].as_str()) {
            (true, Some(token)) => token.to_owned(),
            _ => return Err(fail(format!("admin sign-in: {status} {body}"))),
        };
        let sim = format!("http://{sim_api}");
        let stack = Stack {
            http,
            gateway,
            sim,
            token,
            _stops: vec![sim_stop, gw_stop],
        };
        for agent in AGENTS {
            stack
                .ok(stack
                    .http
                    .post(format!("{}/_sim/ccai/agents/{agent}/status", stack.sim))
                    .json(&json!({"status_id": 0})))
                .await?;
        }
        Ok(stack)
    }

    async fn ok(&self, request: reqwest::RequestBuilder) -> Result<Value, Failure> {
        let (status, body) = send(request).await?;
        if status.is_success() {
            Ok(body)
        } else {
            Err(fail(format!("{status} {body}")))
        }
    }

    async fn provision_fields(&self) -> Result<(), Failure> {
        self.ok(self
            .http
            .post(format!("{}/api/v1/crm/custom-fields", self.gateway))
            .bearer_auth(&self.token))
            .await?;
        // Sessions that start after the provisioning get the fields (millisecond clocks).
        tokio::time::sleep(Duration::from_millis(5)).await;
        Ok(())
    }

    /// An inbound IVR call of `agent` from `number`: offered, answered, the caller hangs up,
    /// wrap-up done. Answers the session id.
    async fn call(&self, agent: i64, number: &str) -> Result<i64, Failure> {
        let session = self
            .ok(self
                .http
                .post(format!("{}/_sim/scenarios", self.sim))
                .json(&json!({
                "kind": "inbound_call", "agent_id": agent, "number": number, "recording": true,
                "session": {"origin": "ivr", "selected_menu": {"id": 7, "name": "Billing"},
                    "lang": "en", "queue_duration": 12, "hold_duration": 3}})))
            .await?;
        let id = session["id"]
            .as_i64()
            .ok_or_else(|| fail(format!("no session id: {session}")))?;
        // The tenant's 10 requests per second apply to the agent's controls.
        loop {
            let (status, body) = send(
                self.http
                    .post(format!(
                        "{}/ext/call-control/v1/calls/{id}/answer",
                        self.sim
                    ))
                    .basic_auth("demo", Some("sim-token"))
                    .json(&json!({"agent_id": agent})),
            )
            .await?;
            if status == StatusCode::TOO_MANY_REQUESTS {
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
            if !status.is_success() {
                return Err(fail(format!("answer {id}: {status} {body}")));
            }
            break;
        }
        for event in ["customer_hang_up", "wrap_up_done"] {
            self.ok(self
                .http
                .post(format!("{}/_sim/calls/{id}/{event}", self.sim)))
                .await?;
        }
        Ok(id)
    }

    async fn state(&self) -> Result<Value, Failure> {
        self.ok(self.http.get(format!("{}/_sim/state", self.sim)))
            .await
    }

    /// Waits until every webhook was delivered and every CRM operation ran.
    async fn settled(&self) -> Result<(), Failure> {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let state = self.state().await?;
            let delivered = state["webhooks"]
                .as_array()
                .is_some_and(|w| w.iter().all(|d| d["state"] == "delivered"));
            let outbox = self
                .ok(self
                    .http
                    .get(format!("{}/api/v1/crm/outbox", self.gateway))
                    .bearer_auth(&self.token))
                .await?;
            if delivered && outbox["inbox"] == 0 && outbox["pending"] == 0 {
                if outbox["dead"] != 0 {
                    return Err(fail(format!("dead letters: {outbox}")));
                }
                return Ok(());
            }
            if Instant::now() > deadline {
                return Err(fail(format!("not settled in 60 s: {outbox}")));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The `/v1` requests the simulated Kustomer recorded, in order.
    async fn kustomer_requests(&self) -> Result<Vec<(String, u16)>, Failure> {
        let state = self.state().await?;
        if state["dropped"].as_u64().unwrap_or(0) > 0 {
            return Err(fail("the simulator's request log overflowed"));
        }
        Ok(state["requests"]
            .as_array()
            .map(|r| {
                r.iter()
                    .filter_map(|r| {
                        let path = r["path"].as_str()?;
                        path.starts_with("/v1/").then(|| {
                            (
                                format!("{} {}", r["method"].as_str().unwrap_or("?"), shape(path)),
                                r["status"].as_u64().unwrap_or(0) as u16,
                            )
                        })
                    })
                    .collect()
            })
            .unwrap_or_default())
    }
}

async fn send(request: reqwest::RequestBuilder) -> Result<(StatusCode, Value), Failure> {
    let response = request.send().await?;
    let status = response.status();
    Ok((status, response.json().await.unwrap_or(Value::Null)))
}

/// A path with its ids and look-up values replaced, to group requests.
fn shape(path: &str) -> String {
    path.split('/')
        .map(|segment| {
            if let Some((key, _)) = segment.split_once('=') {
                format!("{key}=…")
            } else if segment.len() >= 16 && segment.chars().all(|c| c.is_ascii_hexdigit()) {
                "{id}".into()
            } else {
                segment.to_owned()
            }
        })
        .collect::<Vec<_>>()
        .join("/")
}

/// Part 1: requests per call, each call measured alone.
async fn cost_per_call() -> Result<(), Failure> {
    let stack = Stack::start("cost", 1_000_000, 8).await?;
    let measure = |label: &'static str, agent: i64, number: &'static str| {
        let stack = &stack;
        async move {
            let before = stack.kustomer_requests().await?.len();
            stack.call(agent, number).await?;
            stack.settled().await?;
            let after = stack.kustomer_requests().await?;
            let mine = &after[before..];
            let mut by_kind: BTreeMap<&str, usize> = BTreeMap::new();
            for (kind, _) in mine {
                *by_kind.entry(kind.as_str()).or_default() += 1;
            }
            println!("  {label}: {} Kustomer requests", mine.len());
            for (kind, n) in by_kind {
                println!("      {n} × {kind}");
            }
            Ok::<usize, Failure>(mine.len())
        }
    };
    println!("Kustomer requests per standard inbound IVR call (answered, ended, recording on):");
    println!(" without the record fields:");
    measure(
        "new caller, the process's first call (Kustomer user looked up)",
        102,
        "+14155550201",
    )
    .await?;
    measure("new caller", 102, "+14155550202").await?;
    measure(
        "returning caller (appended to its Open conversation)",
        102,
        "+14155550202",
    )
    .await?;
    stack.provision_fields().await?;
    println!(" with the record fields provisioned (durations written on the message):");
    measure("new caller", 102, "+14155550203").await?;
    measure(
        "returning caller (appended to its Open conversation)",
        102,
        "+14155550203",
    )
    .await?;
    Ok(())
}

/// Part 2: sessions completed per minute under the budget.
async fn throughput(o: &Options) -> Result<(), Failure> {
    let per_minute = (f64::from(o.per_window) * 60_000.0 / o.window_ms as f64).round() as u32;
    let stack = Stack::start("throughput", per_minute, o.workers).await?;
    if o.fields {
        stack.provision_fields().await?;
    }
    stack
        .ok(stack
            .http
            .post(format!("{}/_sim/kustomer/limits", stack.sim))
            .json(&json!({"per_window": o.per_window, "window_ms": o.window_ms})))
        .await?;
    let duration = Duration::from_secs_f64(o.minutes * 60.0);
    // A backlog larger than what the budget lets through (about 7 requests a call).
    let sessions = o
        .sessions
        .unwrap_or(((f64::from(per_minute) / 7.0) * o.minutes * 1.5) as usize + 30);
    println!(
        "\nThroughput: {} Kustomer requests per {} ms ({per_minute}/min) for the org, gateway budget {per_minute}/min, {} workers; {sessions} {} callers driven, record fields {}; measured {:.1} min",
        o.per_window,
        o.window_ms,
        o.workers,
        if o.returning { "returning" } else { "new" },
        if o.fields { "on" } else { "off" },
        o.minutes
    );
    let start = Instant::now();
    let start_ms = adapter_gateway::clock::now_ms();
    let next = Arc::new(AtomicUsize::new(0));
    let stack = Arc::new(stack);
    let mut drivers = tokio::task::JoinSet::new();
    for agent in AGENTS {
        let (stack, next) = (stack.clone(), next.clone());
        let returning = o.returning;
        drivers.spawn(async move {
            let mut ids = Vec::new();
            loop {
                let i = next.fetch_add(1, Ordering::SeqCst);
                if i >= sessions || start.elapsed() >= duration {
                    return Ok::<_, Failure>(ids);
                }
                // Returning callers: 30 numbers, each called again and again.
                let n = if returning { i % 30 } else { i };
                let number = format!("+1415557{n:04}");
                ids.push(stack.call(agent, &number).await?);
            }
        });
    }
    let mut ids = Vec::new();
    while let Some(done) = drivers.join_next().await {
        ids.extend(done??);
    }
    let driven_in = start.elapsed();
    println!(
        "  {} calls driven in {:.1} s",
        ids.len(),
        driven_in.as_secs_f64()
    );
    if let Some(left) = duration.checked_sub(start.elapsed()) {
        tokio::time::sleep(left).await;
    }
    let state = stack.state().await?;
    let end_ms = start_ms + duration.as_millis() as i64;
    // A call is complete when its last write, its message with the recording, is in Kustomer.
    let mut done_at: Vec<i64> = state["kustomer"]["messages"]
        .as_array()
        .map(|m| {
            m.iter()
                .filter(|m| {
                    m["externalId"]
                        .as_str()
                        .is_some_and(|x| x.ends_with("-message"))
                        && m["attachments"].as_array().is_some_and(|a| !a.is_empty())
                })
                .filter_map(|m| m["createdAtMs"].as_i64())
                .filter(|t| *t <= end_ms)
                .collect()
        })
        .unwrap_or_default();
    done_at.sort_unstable();
    let requests: Vec<(u64, u16)> = state["requests"]
        .as_array()
        .map(|r| {
            r.iter()
                .filter(|r| r["path"].as_str().is_some_and(|p| p.starts_with("/v1/")))
                .filter_map(|r| Some((r["at_ms"].as_u64()?, r["status"].as_u64()? as u16)))
                .collect()
        })
        .unwrap_or_default();
    // The org's windows are aligned on the clock (as the simulator's and the gateway's): the
    // first and the last are partly outside the run; the full ones in between are the steady
    // state.
    let first = start_ms - start_ms.rem_euclid(o.window_ms);
    println!(
        "  per budget window of {} ms (aligned on the clock):",
        o.window_ms
    );
    let mut full = Vec::new();
    let mut from = first;
    while from < end_ms {
        let to = from + o.window_ms;
        let completed = done_at.iter().filter(|t| (from..to).contains(t)).count();
        let in_window = |want: fn(u16) -> bool| {
            requests
                .iter()
                .filter(|(at, s)| (from..to).contains(&(*at as i64)) && want(*s))
                .count()
        };
        let accepted = in_window(|s| s != 429);
        let refused = in_window(|s| s == 429);
        let whole = from >= start_ms && to <= end_ms;
        println!(
            "    {:+7.1} s to {:+7.1} s{}: {completed} calls completed, {accepted} Kustomer requests answered, {refused} answered 429",
            (from - start_ms) as f64 / 1000.0,
            (to - start_ms) as f64 / 1000.0,
            if whole { "" } else { " (partial)" }
        );
        if whole {
            full.push(completed);
        }
        from = to;
    }
    let total = done_at.len();
    let per_min = total as f64 / o.minutes;
    let steady_per_min = if full.is_empty() {
        per_min
    } else {
        full.iter().sum::<usize>() as f64 / full.len() as f64 * 60_000.0 / o.window_ms as f64
    };
    let accepted = requests
        .iter()
        .filter(|(at, s)| (*at as i64) < end_ms && *s != 429)
        .count();
    println!(
        "  {total} calls completed in {:.1} min: {per_min:.0} per minute overall, {steady_per_min:.0} per minute in steady state ({} full windows); {accepted} Kustomer requests answered ({:.1} per completed call)",
        o.minutes,
        full.len(),
        accepted as f64 / total.max(1) as f64
    );
    if ids.len() <= total {
        println!("  note: every driven call completed: the backlog ran out, drive more (--sessions) for a ceiling");
    }
    Ok(())
}

#[tokio::main]
async fn main() -> Result<(), Failure> {
    let o = options()?;
    println!(
        "command: cargo run --release -p adapter-gateway --example crm_load -- {}",
        std::env::args().skip(1).collect::<Vec<_>>().join(" ")
    );
    cost_per_call().await?;
    throughput(&o).await?;
    Ok(())
}
