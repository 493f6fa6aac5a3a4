//! Load measurement: how many adapter WebSockets and how many session webhooks per second one
//! gateway holds on this machine.
//!
//! ```text
//! cargo run --release -p adapter-gateway --example load -- [--sockets N] [--agents A] [--events M]
//!     [--concurrency C] [--open-concurrency K] [--replays R] [--timeout SECONDS] [--gateway URL --hold SECONDS]
//! ```
//!
//! Everything runs in this one process, on loopback: the simulator (the CCAI API the gateway
//! signs agents in against), the gateway (fresh data folder in the temp dir, webhook
//! credentials on), and the load generator. The gateway and the load generator run on separate
//! tokio runtimes (threads named `gw-*` and `load-*`) so that the CPU each used can be told
//! apart, but they share the machine's cores: the figures are a lower bound for a gateway with
//! the machine to itself.
//!
//! Steps: sign in the simulator's 3 agents and, for `--agents` beyond them (default N/2, two tabs
//! each), issue sessions straight into the gateway's store with synthetic CCAI ids (the simulator
//! knows 3 agents only; webhooks name those agents by id, so no directory lookup); open N
//! WebSockets round-robin over the agents and wait for each one's first message (the
//! snapshot); post M webhooks
//! (unique `event_id`s, call states cycling per agent, each publishing exactly one call event)
//! from C concurrent workers with HTTP Basic; wait until every socket has seen the last event of
//! its agent; post R replays and check that they are answered `{"duplicate":true}` and not
//! delivered again. Exits 0 when everything held, 1 when a socket failed, an event was lost or a
//! webhook failed, 2 when the measurement could not be set up.
//!
//! **Holding sockets for an outside load tool** (`--gateway URL --hold SECONDS`): no stack of
//! its own; the sockets are opened to a running gateway (or a load balancer in front of
//! replicas) and held for SECONDS while something else (`wrk`, in `scripts/bench/replicas.sh`
//! with `SOCKETS`) posts the webhooks; then it reports the sockets still open and the events they
//! received. The agents beyond the simulator's 3 get sessions issued in the gateway's store,
//! named by `LOAD_DATABASE_URL` (an environment variable: a URL may carry a password), with CCAI
//! ids from 100003 up; the gateways must have the webhook credentials below and stream caps
//! above the socket count.

use std::{
    collections::BTreeMap,
    fmt::Write as _,
    net::SocketAddr,
    path::PathBuf,
    process::ExitCode,
    sync::{
        atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering},
        Arc, Mutex,
    },
    time::{Duration, Instant},
};

use adapter_core::agent_events::StreamAuth;
use adapter_gateway::{
    config::{Config, Secret},
    Gateway,
};
use futures_util::{SinkExt, StreamExt};
use reqwest::{Client, StatusCode};
use serde::Deserialize;
use serde_json::{json, Value};
use tokio::sync::Semaphore;
use tokio_tungstenite::{
    connect_async_with_config,
    tungstenite::{protocol::WebSocketConfig, Message},
};

const HOOK_USER: &str = "load-hooks";
const HOOK_PASSWORD: &str = "load-hook-secret";
/// The simulator's seeded agents (crates/simulator/src/ccai.rs).
const AGENTS: [&str; 3] = [
    "ada.lovelace@example.com",
    "grace.hopper@example.com",
    "alan.turing@example.com",
];
/// File descriptors kept aside for everything but the sockets (store, listeners, runtimes).
const FD_RESERVE: u64 = 256;

type Fallible<T> = Result<T, String>;

#[derive(Clone, Debug)]
struct Args {
    sockets: usize,
    /// Agents the sockets and webhooks are spread over; 0: half the sockets (two tabs each).
    agents: usize,
    events: usize,
    concurrency: usize,
    open_concurrency: usize,
    replays: usize,
    timeout: Duration,
    /// A running gateway to hold sockets on, for `hold`.
    gateway: Option<String>,
    hold: Option<Duration>,
}

const USAGE: &str = "usage: load [--sockets N] [--agents A] [--events M] [--concurrency C] \
[--open-concurrency K] [--replays R] [--timeout SECONDS]
  --sockets N           WebSockets to open, spread round-robin over the agents (default 2000)
  --agents A            agents (default N/2: two tabs each, at least 3). The simulator's 3 agents
                        sign in through the API; the others get sessions issued straight into
                        the gateway's store (synthetic CCAI ids, webhooks name them by id)
  --events M            webhooks to post, one call event each (default 20000)
  --concurrency C       concurrent webhook posters (default 32)
  --open-concurrency K  WebSockets being opened at once (default 100)
  --replays R           already-accepted webhooks posted again (default 20)
  --timeout SECONDS     longest wait for opening, posting and fan-out, each (default 300)
  --gateway URL         a running gateway (or its load balancer): no stack of its own, and no
                        webhooks posted; needs --hold. Sessions for the agents beyond the
                        simulator's 3 are issued in the store named by LOAD_DATABASE_URL
  --hold SECONDS        with --gateway: keep the sockets open this long, then report what they
                        received";

fn parse_args(raw: &[String]) -> Fallible<Args> {
    let mut args = Args {
        sockets: 2000,
        agents: 0,
        events: 20_000,
        concurrency: 32,
        open_concurrency: 100,
        replays: 20,
        timeout: Duration::from_secs(300),
        gateway: None,
        hold: None,
    };
    let mut it = raw.iter();
    while let Some(flag) = it.next() {
        if flag == "--help" || flag == "-h" {
            return Err(USAGE.into());
        }
        let value = it
            .next()
            .ok_or_else(|| format!("{flag} needs a value\n{USAGE}"))?;
        if flag == "--gateway" {
            args.gateway = Some(value.trim_end_matches('/').to_owned());
            continue;
        }
        let number: usize = value
            .parse()
            .map_err(|_| format!("{flag} takes a whole number, not {value:?}\n{USAGE}"))?;
        match flag.as_str() {
            "--sockets" => args.sockets = number,
            "--agents" => args.agents = number,
            "--events" => args.events = number,
            "--concurrency" => args.concurrency = number,
            "--open-concurrency" => args.open_concurrency = number,
            "--replays" => args.replays = number,
            "--timeout" => args.timeout = Duration::from_secs(number as u64),
            "--hold" => args.hold = Some(Duration::from_secs(number as u64)),
            _ => return Err(format!("unknown flag {flag}\n{USAGE}")),
        }
    }
    if args.gateway.is_some() != args.hold.is_some() {
        return Err(format!("--gateway and --hold go together\n{USAGE}"));
    }
    if args.concurrency == 0 || args.open_concurrency == 0 {
        return Err("--concurrency and --open-concurrency must be at least 1".into());
    }
    if args.replays > args.events {
        return Err(format!(
            "--replays ({}) cannot exceed --events ({})",
            args.replays, args.events
        ));
    }
    Ok(args)
}

/// The soft and hard limits on open files, from `/proc/self/limits`.
fn fd_limits() -> Option<(u64, String)> {
    let text = std::fs::read_to_string("/proc/self/limits").ok()?;
    let line = text.lines().find(|l| l.starts_with("Max open files"))?;
    let mut fields = line["Max open files".len()..].split_whitespace();
    let soft = fields.next()?.parse().ok()?;
    let hard = fields.next()?.to_owned();
    Some((soft, hard))
}

/// CPU seconds used so far by this process's threads, by group: the gateway's runtime, the
/// load generator's, SQLite's connection threads (sqlx runs one per connection), the rest.
/// From `/proc/self/task/*/stat`, in clock ticks of 1/100 s (Linux's USER_HZ).
#[derive(Clone, Copy, Default, Debug)]
struct Cpu {
    gateway: f64,
    load: f64,
    sqlite: f64,
    other: f64,
}

impl Cpu {
    fn now() -> Cpu {
        let mut cpu = Cpu::default();
        let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
            return cpu;
        };
        for task in tasks.flatten() {
            let Ok(stat) = std::fs::read_to_string(task.path().join("stat")) else {
                continue;
            };
            // pid (comm) state ... ; comm may hold spaces, so split at the last ')'.
            let (Some(open), Some(close)) = (stat.find('('), stat.rfind(')')) else {
                continue;
            };
            let comm = &stat[open + 1..close];
            let fields: Vec<&str> = stat[close + 1..].split_whitespace().collect();
            // After the comm: state is field 3 of the man page, utime 14, stime 15.
            let ticks = |i: usize| fields.get(i - 3).and_then(|f| f.parse::<f64>().ok());
            let (Some(utime), Some(stime)) = (ticks(14), ticks(15)) else {
                continue;
            };
            let seconds = (utime + stime) / 100.0;
            if comm.starts_with("gw-") {
                cpu.gateway += seconds;
            } else if comm.starts_with("load-") {
                cpu.load += seconds;
            } else if comm.starts_with("sqlx-sqlite") {
                cpu.sqlite += seconds;
            } else {
                cpu.other += seconds;
            }
        }
        cpu
    }

    fn since(self, before: Cpu) -> Cpu {
        Cpu {
            gateway: self.gateway - before.gateway,
            load: self.load - before.load,
            sqlite: self.sqlite - before.sqlite,
            other: self.other - before.other,
        }
    }

    fn describe(self, wall: Duration, cores: usize) -> String {
        let wall = wall.as_secs_f64().max(1e-9);
        let total = self.gateway + self.load + self.sqlite + self.other;
        format!(
            "{:.0}% of {cores} cores (gateway {:.1} s, SQLite threads {:.1} s, load generator {:.1} s, other {:.1} s)",
            100.0 * total / (wall * cores as f64),
            self.gateway,
            self.sqlite,
            self.load,
            self.other
        )
    }
}

/// The machine's 1-minute load average: other work on the same cores skews every figure.
fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|t| t.split_whitespace().next().map(str::to_owned))
        .unwrap_or_else(|| "?".into())
}

fn resident_mib() -> Option<f64> {
    let text = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = text.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024.0)
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1000.0)
}

fn rate(count: u64, d: Duration) -> String {
    format!("{:.0}/s", count as f64 / d.as_secs_f64().max(1e-9))
}

/// A stream message, only what the count needs.
#[derive(Deserialize)]
struct Frame {
    #[serde(rename = "type")]
    kind: String,
    /// Absent on `presence` (how many browsers have the agent open): not part of the log.
    #[serde(default)]
    epoch: u64,
    #[serde(default)]
    seq: u64,
}

/// What one socket has seen; written by its reader task only.
struct SocketStats {
    agent: usize,
    /// The sequence number of the first snapshot.
    first_seq: AtomicU64,
    last_seq: AtomicU64,
    events: AtomicU64,
    /// Snapshots after the first: the socket lagged and the gateway sent the state instead.
    snapshots: AtomicU64,
    /// Events a later snapshot stood in for.
    covered: AtomicU64,
    /// Sequence numbers skipped without a snapshot: lost events.
    lost: AtomicU64,
    /// Events at or below the last sequence number seen, or of another epoch.
    out_of_order: AtomicU64,
    heartbeats: AtomicU64,
    presence: AtomicU64,
    /// Open with its snapshot read.
    opened: AtomicBool,
    /// Ended before the gateway was stopped.
    dropped: AtomicBool,
    /// Why the socket ended before the gateway was stopped.
    ended: Mutex<Option<String>>,
}

impl SocketStats {
    fn new(agent: usize) -> Self {
        SocketStats {
            agent,
            first_seq: AtomicU64::new(0),
            last_seq: AtomicU64::new(0),
            events: AtomicU64::new(0),
            snapshots: AtomicU64::new(0),
            covered: AtomicU64::new(0),
            lost: AtomicU64::new(0),
            out_of_order: AtomicU64::new(0),
            heartbeats: AtomicU64::new(0),
            presence: AtomicU64::new(0),
            opened: AtomicBool::new(false),
            dropped: AtomicBool::new(false),
            ended: Mutex::new(None),
        }
    }

    fn end(&self, why: String) {
        let mut ended = self.ended.lock().unwrap_or_else(|p| p.into_inner());
        ended.get_or_insert(why);
        self.dropped.store(true, Ordering::Release);
    }

    fn ended(&self) -> Option<String> {
        self.ended.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn next_frame(socket: &mut Socket) -> Fallible<Option<Frame>> {
    loop {
        match socket.next().await {
            None => return Ok(None),
            Some(Err(error)) => return Err(format!("stream error: {error}")),
            Some(Ok(Message::Text(text))) => {
                return serde_json::from_str(&text).map(Some).map_err(|e| {
                    format!("unreadable message ({e}): {}", &text[..text.len().min(200)])
                })
            }
            Some(Ok(Message::Close(frame))) => {
                return Err(format!(
                    "closed by the gateway: {}",
                    frame.map_or("no close frame".into(), |f| format!(
                        "{} {}",
                        f.code, f.reason
                    ))
                ))
            }
            Some(Ok(_)) => {}
        }
    }
}

/// Opens one socket and reads its snapshot; returns the socket, the epoch and the open time.
async fn open_socket(
    url: &str,
    token: &str,
    stats: &SocketStats,
) -> Fallible<(Socket, u64, Duration)> {
    let started = Instant::now();
    let config = WebSocketConfig::default()
        .read_buffer_size(16 * 1024)
        .write_buffer_size(0);
    let (mut socket, _) = connect_async_with_config(url, Some(config), true)
        .await
        .map_err(|e| format!("connect: {e}"))?;
    let auth = serde_json::to_string(&StreamAuth::new(token.to_owned(), None, None))
        .map_err(|e| e.to_string())?;
    socket
        .send(Message::Text(auth.into()))
        .await
        .map_err(|e| format!("auth: {e}"))?;
    let frame = next_frame(&mut socket)
        .await?
        .ok_or("closed before the snapshot")?;
    if frame.kind != "snapshot" {
        return Err(format!("first message is a {}, not a snapshot", frame.kind));
    }
    stats.first_seq.store(frame.seq, Ordering::Relaxed);
    stats.last_seq.store(frame.seq, Ordering::Release);
    stats.opened.store(true, Ordering::Release);
    Ok((socket, frame.epoch, started.elapsed()))
}

/// Reads until the socket ends, checking that sequence numbers follow on.
async fn read_socket(
    mut socket: Socket,
    epoch: u64,
    stats: Arc<SocketStats>,
    stopping: Arc<AtomicBool>,
) {
    let mut last = stats.last_seq.load(Ordering::Relaxed);
    loop {
        let frame = match next_frame(&mut socket).await {
            Ok(Some(frame)) => frame,
            Ok(None) => {
                if !stopping.load(Ordering::Acquire) {
                    stats.end("the stream ended".into());
                }
                return;
            }
            Err(error) => {
                if !stopping.load(Ordering::Acquire) {
                    stats.end(error);
                }
                return;
            }
        };
        if frame.kind == "presence" {
            stats.presence.fetch_add(1, Ordering::Relaxed);
            continue;
        }
        if frame.epoch != epoch {
            stats.out_of_order.fetch_add(1, Ordering::Relaxed);
            continue;
        }
        match frame.kind.as_str() {
            "event" => {
                if frame.seq <= last {
                    stats.out_of_order.fetch_add(1, Ordering::Relaxed);
                    continue;
                }
                if frame.seq > last + 1 {
                    stats
                        .lost
                        .fetch_add(frame.seq - last - 1, Ordering::Relaxed);
                }
                stats.events.fetch_add(1, Ordering::Relaxed);
            }
            "snapshot" => {
                stats.snapshots.fetch_add(1, Ordering::Relaxed);
                if frame.seq > last {
                    stats.covered.fetch_add(frame.seq - last, Ordering::Relaxed);
                } else {
                    continue;
                }
            }
            "heartbeat" => {
                stats.heartbeats.fetch_add(1, Ordering::Relaxed);
                continue;
            }
            other => {
                stats.end(format!("unknown message type {other}"));
                return;
            }
        }
        last = frame.seq;
        stats.last_seq.store(last, Ordering::Release);
    }
}

/// A session event for agent `agent_id`, the `index`-th of the run, in the platform's
/// documented envelope: a new call assigned to the agent (each publishes exactly one event on
/// the agent's stream: a ringing call; no status).
fn webhook(run: &str, index: usize, agent_id: i64, _email: &str, _step: usize) -> Value {
    let run_tag = run
        .bytes()
        .fold(0u32, |h, b| h.wrapping_mul(31).wrapping_add(u32::from(b)));
    json!({"count": 1, "events": [{
        "event_id": format!("{run_tag:08x}-0000-4000-8000-{index:012x}"),
        "timestamp": 1_795_276_800_000_i64 + index as i64,
        "item": {"call_id": format!("load{run_tag:x}x{index}"), "state": "connected",
            "dn": "+14155552671",
            "participants": [{"type": "external", "status": "connected"},
                {"type": "agent", "status": "accepted", "id": agent_id}]},
    }]})
}

#[derive(Default)]
struct PostResults {
    latencies: Vec<Duration>,
    accepted_per_agent: Vec<u64>,
    /// Non-200 answers (and transport errors) by status, with the first body.
    failures: BTreeMap<String, (u64, String)>,
    /// 200s whose body did not say the event was accepted.
    unexpected: Vec<String>,
    unexpected_count: u64,
}

impl PostResults {
    fn fail(&mut self, key: String, body: String) {
        let entry = self.failures.entry(key).or_insert((0, body));
        entry.0 += 1;
    }

    fn merge(&mut self, other: PostResults) {
        self.latencies.extend(other.latencies);
        for (a, b) in self
            .accepted_per_agent
            .iter_mut()
            .zip(other.accepted_per_agent)
        {
            *a += b;
        }
        for (key, (count, body)) in other.failures {
            let entry = self.failures.entry(key).or_insert((0, body));
            entry.0 += count;
        }
        self.unexpected_count += other.unexpected_count;
        for u in other.unexpected {
            if self.unexpected.len() < 3 {
                self.unexpected.push(u);
            }
        }
    }

    fn accepted(&self) -> u64 {
        self.accepted_per_agent.iter().sum()
    }
}

struct Agent {
    email: String,
    id: i64,
    token: String,
}

async fn sign_in(http: &Client, gateway: &str, email: &'static str) -> Fallible<Agent> {
    let response = http
        .post(format!("{gateway}/api/v1/sessions"))
        .json(&json!({"email": email, "kustomer_user": {"id": format!("kus-load-{email}"), "email": email}}))
        .send()
        .await
        .map_err(|e| format!("sign-in of {email}: {e}"))?;
    let status = response.status();
    let body: Value = response
        .json()
        .await
        .map_err(|e| format!("sign-in of {email}: {status}, unreadable body: {e}"))?;
    if status != StatusCode::CREATED {
        return Err(format!("sign-in of {email}: {status} {body}"));
    }
    match (body["token"].as_str(), body["ccai_agent_id"].as_i64()) {
        (Some(token), Some(id)) => Ok(Agent {
            email: email.to_owned(),
            id,
            token: token.to_owned(),
        }),
        _ => Err(format!(
            "sign-in of {email}: no token or agent id in {body}"
        )),
    }
}

/// The agent's current sequence number, from the snapshot of a fresh socket.
async fn current_seq(ws_base: &str, token: &str) -> Fallible<(u64, u64)> {
    let stats = SocketStats::new(0);
    let (mut socket, epoch, _) =
        open_socket(&format!("{ws_base}/api/v1/events"), token, &stats).await?;
    let _ = socket.close(None).await;
    Ok((epoch, stats.first_seq.load(Ordering::Relaxed)))
}

struct Stack {
    gateway: String,
    /// The stack this process runs; `None` when it holds sockets on a running gateway.
    local: Option<LocalStack>,
}

struct LocalStack {
    simulator_stop: tokio::sync::oneshot::Sender<()>,
    gateway_stop: tokio::sync::oneshot::Sender<()>,
    gateway_served: tokio::task::JoinHandle<Result<(), adapter_gateway::GatewayError>>,
    data_dir: PathBuf,
}

fn runtime(name: &'static str, workers: usize) -> Fallible<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(workers)
        .thread_name(name)
        .enable_all()
        .build()
        .map_err(|e| format!("cannot build the {name} runtime: {e}"))
}

fn start_stack(
    sim_rt: &tokio::runtime::Runtime,
    gw_rt: &tokio::runtime::Runtime,
) -> Fallible<Stack> {
    let sim_config = adapter_simulator::config::Config::for_tests(
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../host"),
    );
    // No webhook target: the load generator posts the webhooks itself.
    let simulator = sim_rt
        .block_on(adapter_simulator::Simulator::start(sim_config))
        .map_err(|e| format!("cannot start the simulator: {e}"))?;
    let (sim_api, _) = simulator
        .local_addrs()
        .map_err(|e| format!("simulator address: {e}"))?;
    let (simulator_stop, sim_stopped) = tokio::sync::oneshot::channel::<()>();
    sim_rt.spawn(simulator.serve(async {
        let _ = sim_stopped.await;
    }));

    let data_dir = std::env::temp_dir().join(format!("adapter-load-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&data_dir);
    let listen: SocketAddr = "127.0.0.1:0".parse().map_err(|e| format!("{e}"))?;
    let mut config = Config::for_tests(listen, data_dir.clone());
    config.ccai_url = format!("http://{sim_api}");
    // Sign-in confirms the agent's Kustomer user: the simulator is the Kustomer org too.
    config.crm.kustomer_url = format!("http://{sim_api}");
    config.call_webhook_user = Some(HOOK_USER.into());
    config.chat_webhook_user = Some(HOOK_USER.into());
    config.ccai_extension = true;
    // Every socket of the run comes from this one address, many per agent.
    config.max_streams_per_agent = 100_000;
    config.max_streams_per_address = 100_000;
    config.call_webhook_password = Some(Secret::new(HOOK_PASSWORD));
    config.chat_webhook_password = Some(Secret::new(HOOK_PASSWORD));
    let gateway = gw_rt
        .block_on(Gateway::start(config))
        .map_err(|e| format!("cannot start the gateway: {e}"))?;
    let addr = gateway
        .local_addr()
        .map_err(|e| format!("gateway address: {e}"))?;
    let (gateway_stop, gw_stopped) = tokio::sync::oneshot::channel::<()>();
    let gateway_served = gw_rt.spawn(gateway.serve(async {
        let _ = gw_stopped.await;
    }));
    Ok(Stack {
        gateway: format!("http://{addr}"),
        local: Some(LocalStack {
            simulator_stop,
            gateway_stop,
            gateway_served,
            data_dir,
        }),
    })
}

fn main() -> ExitCode {
    let raw: Vec<String> = std::env::args().skip(1).collect();
    let args = match parse_args(&raw) {
        Ok(args) => args,
        Err(message) => {
            eprintln!("{message}");
            return ExitCode::from(2);
        }
    };
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let gw_rt = match runtime("gw-worker", cores) {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("load: {e}");
            return ExitCode::from(2);
        }
    };
    let load_rt = match runtime("load-worker", cores) {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("load: {e}");
            return ExitCode::from(2);
        }
    };
    let sim_rt = match runtime("sim-worker", 1) {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("load: {e}");
            return ExitCode::from(2);
        }
    };
    let stack = match &args.gateway {
        Some(gateway) => Ok(Stack {
            gateway: gateway.clone(),
            local: None,
        }),
        None => start_stack(&sim_rt, &gw_rt),
    };
    let stack = match stack {
        Ok(stack) => stack,
        Err(e) => {
            eprintln!("load: {e}");
            return ExitCode::from(2);
        }
    };
    let data_dir = stack.local.as_ref().map(|l| l.data_dir.clone());
    let outcome = load_rt.block_on(run(args, raw, cores, stack));
    if let Some(data_dir) = data_dir {
        let _ = std::fs::remove_dir_all(&data_dir);
    }
    // Readers still open would keep the runtimes busy: do not wait for them.
    load_rt.shutdown_timeout(Duration::from_secs(2));
    gw_rt.shutdown_timeout(Duration::from_secs(2));
    sim_rt.shutdown_timeout(Duration::from_secs(2));
    match outcome {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(1),
        Err(e) => {
            eprintln!("load: {e}");
            ExitCode::from(2)
        }
    }
}

/// Runs the measurement and prints the report; `Ok(false)` when something did not hold.
async fn run(mut args: Args, raw: Vec<String>, cores: usize, stack: Stack) -> Fallible<bool> {
    let requested_sockets = args.sockets;
    let load_before = load_average();
    let mut notes = Vec::new();
    let limits = fd_limits();
    match &limits {
        Some((soft, hard)) => {
            // Two descriptors per socket (both ends are in this process, unless the gateway is
            // another's), two per poster.
            let per_socket = if args.gateway.is_some() { 1 } else { 2 };
            let budget = soft.saturating_sub(FD_RESERVE + 2 * args.concurrency as u64) / per_socket;
            if (args.sockets as u64) > budget {
                let message = format!(
                    "--sockets {} clamped to {budget}: the open-files limit is {soft} (hard {hard}), each socket takes 2 in this process, {} kept for the rest; raise it with `ulimit -n`",
                    args.sockets,
                    FD_RESERVE + 2 * args.concurrency as u64
                );
                eprintln!("load: {message}");
                notes.push(message);
                args.sockets = budget as usize;
            }
        }
        None => notes
            .push("open-files limit unknown (no /proc/self/limits): --sockets not checked".into()),
    }
    let fd_text = limits.map_or("unknown".into(), |(soft, hard)| {
        format!("{soft} (hard {hard})")
    });
    eprintln!(
        "load: {} sockets, {} webhooks, {} posters; gateway and load generator share {cores} cores",
        args.sockets, args.events, args.concurrency
    );

    let http = Client::builder()
        .pool_max_idle_per_host(args.concurrency.max(8))
        .timeout(Duration::from_secs(120))
        .tcp_nodelay(true)
        .build()
        .map_err(|e| format!("HTTP client: {e}"))?;
    let agent_count = if args.agents == 0 {
        args.sockets.div_ceil(2).max(AGENTS.len())
    } else {
        args.agents.max(AGENTS.len())
    };
    if args.agents != 0 && args.agents < AGENTS.len() {
        notes.push(format!(
            "--agents {} raised to the simulator's {} agents",
            args.agents,
            AGENTS.len()
        ));
    }
    let signing_started = Instant::now();
    let mut agents = Vec::new();
    for email in AGENTS {
        agents.push(sign_in(&http, &stack.gateway, email).await?);
    }
    if agent_count > AGENTS.len() {
        // The simulator knows 3 agents only: the others get sessions the way sign-in issues
        // them, in the gateway's own store (a second connection pool to the same file).
        let store = match &stack.local {
            Some(local) => adapter_gateway::store::Store::for_tests(&local.data_dir).await,
            None => {
                let url: adapter_gateway::config::DatabaseUrl = std::env::var("LOAD_DATABASE_URL")
                    .map_err(|_| "--gateway with more than 3 agents needs LOAD_DATABASE_URL, the gateway's store")?
                    .parse()?;
                adapter_gateway::store::Store::connect(&url, Default::default()).await
            }
        }
        .map_err(|e| format!("cannot open the gateway's store to issue sessions: {e}"))?;
        let sessions = adapter_gateway::sessions::Sessions::new(
            store.pool(),
            adapter_gateway::sessions::Limits::with_ttl(Duration::from_secs(3600)),
        );
        for i in AGENTS.len()..agent_count {
            let id = 100_000 + i as i64;
            let email = format!("load-agent-{i}@example.com");
            let issued = sessions
                .issue(&email, id, &format!("kus-load-{i}"))
                .await
                .map_err(|e| format!("cannot issue a session for {email}: {e}"))?;
            agents.push(Agent {
                email,
                id,
                token: issued.token,
            });
        }
        store.close().await;
    }
    let signing_took = signing_started.elapsed();
    let ws_base = stack.gateway.replacen("http://", "ws://", 1);
    let rss_before = resident_mib();

    // --- Sockets.
    let stopping = Arc::new(AtomicBool::new(false));
    let stats: Vec<Arc<SocketStats>> = (0..args.sockets)
        .map(|i| Arc::new(SocketStats::new(i % agents.len())))
        .collect();
    let gate = Arc::new(Semaphore::new(args.open_concurrency));
    let cpu_before = Cpu::now();
    let open_started = Instant::now();
    let mut opening = tokio::task::JoinSet::new();
    for stat in &stats {
        let url = format!("{ws_base}/api/v1/events");
        let token = agents[stat.agent].token.clone();
        let (stat, gate, stopping) = (Arc::clone(stat), Arc::clone(&gate), Arc::clone(&stopping));
        opening.spawn(async move {
            let _permit = gate.acquire_owned().await.map_err(|e| e.to_string())?;
            let (socket, epoch, took) = open_socket(&url, &token, &stat).await?;
            tokio::spawn(read_socket(socket, epoch, stat, stopping));
            Ok::<_, String>((epoch, took))
        });
    }
    let mut open_times = Vec::new();
    let mut open_errors: BTreeMap<String, u64> = BTreeMap::new();
    let mut epochs = std::collections::BTreeSet::new();
    let deadline = tokio::time::Instant::now() + args.timeout;
    loop {
        match tokio::time::timeout_at(deadline, opening.join_next()).await {
            Ok(None) => break,
            Ok(Some(Ok(Ok((epoch, took))))) => {
                epochs.insert(epoch);
                open_times.push(took);
            }
            Ok(Some(Ok(Err(error)))) => *open_errors.entry(error).or_default() += 1,
            Ok(Some(Err(join))) => *open_errors.entry(format!("task: {join}")).or_default() += 1,
            Err(_) => {
                let left = opening.len() as u64;
                opening.abort_all();
                *open_errors
                    .entry(format!("not open within {} s", args.timeout.as_secs()))
                    .or_default() += left;
                break;
            }
        }
    }
    let open_wall = open_started.elapsed();
    let open_cpu = Cpu::now().since(cpu_before);
    let opened = open_times.len();
    open_times.sort();
    let rss_open = resident_mib();
    if epochs.len() > 1 {
        return Err(format!("sockets saw several epochs: {epochs:?}"));
    }
    let epoch = epochs.first().copied().unwrap_or(0);
    eprintln!(
        "load: {opened}/{} sockets open in {}",
        args.sockets,
        ms(open_wall)
    );

    // --- Holding them for an outside load tool.
    if let Some(hold) = args.hold {
        let received_before: u64 = stats.iter().map(|s| s.events.load(Ordering::Relaxed)).sum();
        eprintln!("load: holding {opened} sockets for {} s", hold.as_secs());
        tokio::time::sleep(hold).await;
        let live: Vec<&Arc<SocketStats>> = stats
            .iter()
            .filter(|s| s.opened.load(Ordering::Acquire))
            .collect();
        let ended = live.iter().filter(|s| s.ended().is_some()).count();
        let received: u64 = live
            .iter()
            .map(|s| s.events.load(Ordering::Relaxed))
            .sum::<u64>()
            - received_before;
        let receiving = live
            .iter()
            .filter(|s| s.events.load(Ordering::Relaxed) > 0)
            .count();
        let gaps: u64 = live.iter().map(|s| s.lost.load(Ordering::Relaxed)).sum();
        let out_of_order: u64 = live
            .iter()
            .map(|s| s.out_of_order.load(Ordering::Relaxed))
            .sum();
        stopping.store(true, Ordering::Release);
        println!(
            "sockets: {opened}/{} open through {} ({} agents), opened in {} (p50 {}, p99 {}); {ended} closed during the {} s hold",
            args.sockets,
            stack.gateway,
            agents.len(),
            ms(open_wall),
            ms(percentile(&open_times, 50.0)),
            ms(percentile(&open_times, 99.0)),
            hold.as_secs()
        );
        println!(
            "events received while held: {received} on {receiving} sockets; gaps {gaps}, out of order {out_of_order}"
        );
        for (error, n) in &open_errors {
            println!("  open error ×{n}: {error}");
        }
        return Ok(opened == args.sockets && ended == 0 && gaps == 0 && out_of_order == 0);
    }

    // Where each agent's log stands before the webhooks (seen by a fresh socket).
    let mut base_seq = Vec::new();
    for agent in &agents {
        let (e, seq) = current_seq(&ws_base, &agent.token).await?;
        if opened > 0 && e != epoch {
            return Err(format!("epoch changed from {epoch} to {e}"));
        }
        base_seq.push(seq);
    }
    for stat in &stats {
        let first = stat.first_seq.load(Ordering::Relaxed);
        if stat.opened.load(Ordering::Acquire) && first != base_seq[stat.agent] {
            notes.push(format!(
                "a socket's snapshot said seq {first} for agent {}, the log is at {}",
                agents[stat.agent].id, base_seq[stat.agent]
            ));
            break;
        }
    }

    // --- Webhooks.
    let next = Arc::new(AtomicUsize::new(0));
    let run_id = format!("{}-{}", std::process::id(), crate_time_tag());
    let url = format!("{}/webhooks/ccai/calls", stack.gateway);
    let targets: Arc<Vec<(i64, String)>> =
        Arc::new(agents.iter().map(|a| (a.id, a.email.clone())).collect());
    let post_deadline = Instant::now() + args.timeout;
    let cpu_before = Cpu::now();
    let post_started = Instant::now();
    let mut posters = tokio::task::JoinSet::new();
    for _ in 0..args.concurrency {
        let (next, http, url, targets, run_id) = (
            Arc::clone(&next),
            http.clone(),
            url.clone(),
            Arc::clone(&targets),
            run_id.clone(),
        );
        let events = args.events;
        posters.spawn(async move {
            let mut results = PostResults {
                accepted_per_agent: vec![0; targets.len()],
                ..PostResults::default()
            };
            loop {
                // Past the deadline, nothing new is sent; what is in flight is answered.
                if Instant::now() >= post_deadline {
                    return results;
                }
                let index = next.fetch_add(1, Ordering::Relaxed);
                if index >= events {
                    return results;
                }
                let agent = index % targets.len();
                let (agent_id, email) = &targets[agent];
                let agent_id = *agent_id;
                let body = webhook(&run_id, index, agent_id, email, index / targets.len());
                let sent = Instant::now();
                let response = http
                    .post(&url)
                    .basic_auth(HOOK_USER, Some(HOOK_PASSWORD))
                    .json(&body)
                    .send()
                    .await;
                let (status, text) = match response {
                    Ok(response) => {
                        let status = response.status();
                        match response.text().await {
                            Ok(text) => (status, text),
                            Err(e) => {
                                results.fail(format!("{status}, body unreadable"), e.to_string());
                                continue;
                            }
                        }
                    }
                    Err(e) => {
                        results.fail("transport error".into(), e.to_string());
                        continue;
                    }
                };
                let took = sent.elapsed();
                if status != StatusCode::OK {
                    results.fail(status.to_string(), text);
                    continue;
                }
                results.latencies.push(took);
                let answer: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
                if answer["accepted"] == json!(1) && agent_id > 0 {
                    results.accepted_per_agent[agent] += 1;
                } else {
                    results.unexpected_count += 1;
                    if results.unexpected.len() < 3 {
                        results.unexpected.push(text);
                    }
                }
            }
        });
    }
    let mut posted = PostResults {
        accepted_per_agent: vec![0; agents.len()],
        ..PostResults::default()
    };
    while let Some(joined) = posters.join_next().await {
        match joined {
            Ok(results) => posted.merge(results),
            Err(join) => posted.fail("poster task failed".into(), join.to_string()),
        }
    }
    let sent = next.load(Ordering::Relaxed).min(args.events);
    let posting_timed_out = sent < args.events;
    let post_wall = post_started.elapsed();
    let post_cpu = Cpu::now().since(cpu_before);
    posted.latencies.sort();
    let accepted = posted.accepted();
    eprintln!(
        "load: {accepted}/{} webhooks accepted in {}",
        args.events,
        ms(post_wall)
    );

    // --- Fan-out: every live socket at its agent's last sequence number.
    let expected: Vec<u64> = base_seq
        .iter()
        .zip(&posted.accepted_per_agent)
        .map(|(base, n)| base + n)
        .collect();
    let live: Vec<&Arc<SocketStats>> = stats
        .iter()
        .filter(|s| s.opened.load(Ordering::Acquire))
        .collect();
    let fanout_deadline = Instant::now() + args.timeout;
    let fanout_done = loop {
        // Short-circuits at the first socket behind: cheap while many are.
        let behind = live.iter().any(|s| {
            s.last_seq.load(Ordering::Acquire) < expected[s.agent]
                && !s.dropped.load(Ordering::Acquire)
        });
        if !behind {
            break Some(post_started.elapsed());
        }
        if Instant::now() >= fanout_deadline {
            break None;
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    };
    let fanout_cpu = Cpu::now().since(cpu_before);
    let delivered: u64 = live.iter().map(|s| s.events.load(Ordering::Relaxed)).sum();
    let owed: u64 = live
        .iter()
        .map(|s| posted.accepted_per_agent[s.agent])
        .sum();

    // --- Replays: answered as duplicates, not delivered again.
    let mut replay_ok = 0u64;
    let mut replay_bad = Vec::new();
    for index in 0..args.replays {
        let agent = index % agents.len();
        let body = webhook(
            &run_id,
            index,
            agents[agent].id,
            &agents[agent].email,
            index / agents.len(),
        );
        match http
            .post(&url)
            .basic_auth(HOOK_USER, Some(HOOK_PASSWORD))
            .json(&body)
            .send()
            .await
        {
            Ok(response) => {
                let status = response.status();
                let text = response.text().await.unwrap_or_default();
                let value: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
                if status == StatusCode::OK && value["duplicates"] == json!(1) {
                    replay_ok += 1;
                } else {
                    replay_bad.push(format!("{status} {text}"));
                }
            }
            Err(e) => replay_bad.push(format!("transport error: {e}")),
        }
    }
    // Give a wrongly re-published replay time to arrive.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let mut after_seq = Vec::new();
    for agent in &agents {
        after_seq.push(current_seq(&ws_base, &agent.token).await?.1);
    }
    let delivered_after: u64 = live.iter().map(|s| s.events.load(Ordering::Relaxed)).sum();
    let past_expected = live
        .iter()
        .filter(|s| s.last_seq.load(Ordering::Acquire) > expected[s.agent])
        .count();
    let rss_end = resident_mib();

    // --- Per-socket tallies (before stopping, so that the close is not counted).
    let ended: Vec<String> = live.iter().filter_map(|s| s.ended()).collect();
    let lagged_sockets = live
        .iter()
        .filter(|s| s.snapshots.load(Ordering::Relaxed) > 0)
        .count();
    let snapshots: u64 = live
        .iter()
        .map(|s| s.snapshots.load(Ordering::Relaxed))
        .sum();
    let covered: u64 = live.iter().map(|s| s.covered.load(Ordering::Relaxed)).sum();
    let lost_gaps: u64 = live.iter().map(|s| s.lost.load(Ordering::Relaxed)).sum();
    let out_of_order: u64 = live
        .iter()
        .map(|s| s.out_of_order.load(Ordering::Relaxed))
        .sum();
    let heartbeats: u64 = live
        .iter()
        .map(|s| s.heartbeats.load(Ordering::Relaxed))
        .sum();
    let presence: u64 = live
        .iter()
        .map(|s| s.presence.load(Ordering::Relaxed))
        .sum();
    let short: Vec<String> = live
        .iter()
        .filter(|s| s.last_seq.load(Ordering::Acquire) < expected[s.agent])
        .take(3)
        .map(|s| {
            format!(
                "agent {} socket at seq {} of {}{}",
                agents[s.agent].id,
                s.last_seq.load(Ordering::Acquire),
                expected[s.agent],
                s.ended().map_or(String::new(), |e| format!(" ({e})"))
            )
        })
        .collect();
    let short_count = live
        .iter()
        .filter(|s| s.last_seq.load(Ordering::Acquire) < expected[s.agent])
        .count();

    // --- Stop: the gateway closes the streams (1012) and flushes its log.
    stopping.store(true, Ordering::Release);
    let stop_started = Instant::now();
    let Some(local) = stack.local else {
        return Err("no stack of its own to stop".into());
    };
    let _ = local.gateway_stop.send(());
    let served = tokio::time::timeout(Duration::from_secs(30), local.gateway_served).await;
    let stop_took = stop_started.elapsed();
    let stop_text = match served {
        Ok(Ok(Ok(()))) => format!(
            "stopped cleanly in {} (streams closed, log flushed)",
            ms(stop_took)
        ),
        Ok(Ok(Err(e))) => format!("stopped with an error after {}: {e}", ms(stop_took)),
        Ok(Err(e)) => format!("serve task failed: {e}"),
        Err(_) => "did not stop within 30 s".into(),
    };
    let _ = local.simulator_stop.send(());

    // --- Verdict.
    let sockets_failed = args.sockets - opened + ended.len();
    // Refused, answered unexpectedly, or never answered (timeout).
    let webhooks_failed = (args.events as u64).saturating_sub(accepted);
    let log_matches = after_seq == expected;
    let replays_held = replay_ok == args.replays as u64
        && delivered_after == delivered
        && past_expected == 0
        && log_matches;
    let ok = sockets_failed == 0
        && webhooks_failed == 0
        && !posting_timed_out
        && lost_gaps == 0
        && short_count == 0
        && fanout_done.is_some()
        && out_of_order == 0
        && replays_held;

    let load_after = load_average();
    let mut r = String::new();
    let _ = writeln!(
        r,
        "==================== gateway load report ===================="
    );
    let _ = writeln!(
        r,
        "command      cargo run --release -p adapter-gateway --example load -- {}",
        raw.join(" ")
    );
    let _ = writeln!(
        r,
        "machine      {cores} cores shared by the gateway (runtime gw-*, {cores} workers, SQLite on its own threads), the load generator (load-*, {cores} workers) and the simulator; loopback; no log subscriber (the gateway's per-webhook info logs cost nothing here)"
    );
    let _ = writeln!(
        r,
        "load average {load_before} at the start, {load_after} at the end (1 min; above ~1 before the run, other processes share the cores and every figure is low)"
    );
    let _ = writeln!(
        r,
        "open files   limit {fd_text}; sockets asked {requested_sockets}, used {}",
        args.sockets
    );
    for note in &notes {
        let _ = writeln!(r, "note         {note}");
    }
    let _ = writeln!(
        r,
        "sockets      {opened}/{} open with their snapshot in {} ({} at a time; {}); per socket p50 {} p99 {} max {}",
        args.sockets,
        ms(open_wall),
        args.open_concurrency,
        rate(opened as u64, open_wall),
        ms(percentile(&open_times, 50.0)),
        ms(percentile(&open_times, 99.0)),
        ms(open_times.last().copied().unwrap_or_default()),
    );
    for (error, count) in &open_errors {
        let _ = writeln!(r, "  open failed x{count}: {error}");
    }
    let _ = writeln!(
        r,
        "agents       {} ({} signed in through the API, {} with sessions issued into the store), up to {} sockets each; ready in {}",
        agents.len(),
        AGENTS.len(),
        agents.len() - AGENTS.len(),
        args.sockets.div_ceil(agents.len().max(1)),
        ms(signing_took)
    );
    let _ = writeln!(
        r,
        "             opening CPU {}",
        open_cpu.describe(open_wall, cores)
    );
    let _ = writeln!(
        r,
        "memory       resident {} before the sockets, {} with them open, {} at the end",
        rss_before.map_or("?".into(), |m| format!("{m:.0} MiB")),
        rss_open.map_or("?".into(), |m| format!("{m:.0} MiB")),
        rss_end.map_or("?".into(), |m| format!("{m:.0} MiB")),
    );
    let _ = writeln!(
        r,
        "webhooks     {accepted}/{} accepted (200) in {} = {} with {} posters{}",
        args.events,
        ms(post_wall),
        rate(accepted, post_wall),
        args.concurrency,
        if posting_timed_out {
            format!(
                " (TIMED OUT after {} s: {} never sent)",
                args.timeout.as_secs(),
                args.events - sent
            )
        } else {
            String::new()
        }
    );
    let _ = writeln!(
        r,
        "             latency p50 {} p99 {} max {}; CPU {}",
        ms(percentile(&posted.latencies, 50.0)),
        ms(percentile(&posted.latencies, 99.0)),
        ms(posted.latencies.last().copied().unwrap_or_default()),
        post_cpu.describe(post_wall, cores)
    );
    for (status, (count, body)) in &posted.failures {
        let _ = writeln!(
            r,
            "  webhook failed x{count}: {status}; first body: {}",
            &body[..body.len().min(300)]
        );
    }
    if posted.unexpected_count > 0 {
        let _ = writeln!(
            r,
            "  webhook 200 with an unexpected body x{}: {:?}",
            posted.unexpected_count, posted.unexpected
        );
    }
    match fanout_done {
        Some(done) => {
            let _ = writeln!(
                r,
                "fan-out      complete {} after the first webhook, {} after the last was answered",
                ms(done),
                ms(done.saturating_sub(post_wall))
            );
            let _ = writeln!(
                r,
                "             {delivered} events delivered over {} sockets = {} ({} owed: {} per socket on average); CPU {}",
                live.len(),
                rate(delivered, done),
                owed,
                owed / (live.len().max(1) as u64),
                fanout_cpu.describe(done, cores)
            );
        }
        None => {
            let _ = writeln!(
                r,
                "fan-out      NOT complete within {} s: {short_count} sockets behind, e.g. {short:?}",
                args.timeout.as_secs()
            );
        }
    }
    let _ = writeln!(
        r,
        "lag          {snapshots} snapshots instead of events on {lagged_sockets} sockets, standing in for {covered} events; {heartbeats} heartbeats, {presence} presence messages"
    );
    let _ = writeln!(
        r,
        "check        delivered + covered = {} of {owed} owed; lost (seq gaps) {lost_gaps}; out of order {out_of_order}; sockets short of the last seq {short_count}; sockets dropped {}",
        delivered + covered,
        ended.len()
    );
    if let Some(first) = ended.first() {
        let _ = writeln!(r, "  first drop: {first}");
    }
    let mismatched: Vec<String> = (0..agents.len())
        .filter(|&i| after_seq[i] != expected[i])
        .map(|i| {
            format!(
                "agent {}: before {}, expected {}, gateway says {}",
                agents[i].id, base_seq[i], expected[i], after_seq[i]
            )
        })
        .collect();
    let _ = writeln!(
        r,
        "log          {}/{} agents' logs at the expected seq (before + accepted, read from a fresh socket's snapshot; events before: {}, after: {})",
        agents.len() - mismatched.len(),
        agents.len(),
        base_seq.iter().sum::<u64>(),
        after_seq.iter().sum::<u64>()
    );
    for m in mismatched.iter().take(3) {
        let _ = writeln!(r, "  mismatch x{}: {m}", mismatched.len());
    }
    let _ = writeln!(
        r,
        "replays      {replay_ok}/{} answered {{\"duplicate\":true}}; events delivered after them {} (must be 0); sockets past the expected seq {past_expected}",
        args.replays,
        delivered_after.saturating_sub(delivered)
    );
    for bad in replay_bad.iter().take(3) {
        let _ = writeln!(r, "  replay answered: {bad}");
    }
    let _ = writeln!(r, "shutdown     {stop_text}");
    let _ = writeln!(
        r,
        "verdict      {}",
        if ok {
            "OK: every socket got every event"
        } else {
            "FAILED (see above)"
        }
    );
    let _ = writeln!(
        r,
        "============================================================="
    );
    print!("{r}");
    Ok(ok)
}

/// A tag that keeps event ids unique across runs against a kept data folder.
fn crate_time_tag() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis())
}
