//! Crash test of the agent event log: a burst of session webhooks for one agent, the real
//! `adapter-gateway` binary killed with SIGKILL in the middle of it and restarted on the same
//! port and data folder, while an adapter holds the agent's event stream and resumes it on the
//! restarted gateway. Every webhook the gateway answered 200 must reach the adapter, once, and
//! the stream's numbering must run without a gap or a repeat across the crash. The webhooks that
//! got no answer are sent again (the platform retries them), and then every call of the burst
//! must have reached the adapter exactly once.

use std::{
    collections::HashMap,
    path::{Path, PathBuf},
    sync::{Arc, Mutex},
    time::Duration,
};

use futures_util::{SinkExt, StreamExt};
use reqwest::{Client, StatusCode};
use serde_json::{json, Value};
use tokio::time::Instant;
use tokio_tungstenite::{connect_async, tungstenite::Message};

mod support;
use support::process::GatewayProcess;

/// Webhooks in the burst, and how many are answered before the kill.
const WEBHOOKS: usize = 600;
const KILL_AFTER: usize = 250;
/// Webhooks in flight at once.
const CONCURRENCY: usize = 8;
const HOOK_USER: &str = "ccai-hooks";
const HOOK_PASSWORD: &str = "event-crash-secret";
const AGENT: i64 = 101;
const AGENT_EMAIL: &str = "ada.lovelace@example.com";

/// The number the `i`th call comes from: how the adapter tells the calls apart.
fn number(i: usize) -> String {
    format!("+1415557{i:04}")
}

/// One documented event: the `i`th call assigned to the agent (it rings in the adapter).
fn webhook(i: usize) -> Value {
    let mut event = adapter_core::ccai_events::examples::lifecycle()
        .into_iter()
        .nth(2)
        .expect("the lifecycle's assigned event");
    event["event_id"] = json!(format!("{i:08x}-0000-4000-8000-00000000c0de"));
    event["item"]["call_id"] = json!(format!("crash-{i}"));
    event["item"]["dn"] = json!(number(i));
    if let Some(participants) = event["item"]["participants"].as_array_mut() {
        for p in participants.iter_mut().filter(|p| p["type"] == "agent") {
            p["id"] = json!(AGENT);
        }
    }
    json!({"count": 1, "events": [event]})
}

/// What the adapter received: every stream message, in order, across connections.
type Received = Arc<Mutex<Vec<Value>>>;

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn open(gateway: &str, token: &str, resume: Option<(u64, u64)>) -> Socket {
    let url = format!("{}/api/v1/events", gateway.replacen("http://", "ws://", 1));
    let mut socket = connect_async(url).await.expect("the stream opens").0;
    let auth = adapter_core::agent_events::StreamAuth::new(token.to_owned(), resume, None);
    let text = serde_json::to_string(&auth).expect("the auth message encodes");
    socket
        .send(Message::Text(text.into()))
        .await
        .expect("the auth message is sent");
    socket
}

/// Reads the stream into `received` until it closes or breaks.
fn listen(mut socket: Socket, received: Received) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        while let Some(Ok(message)) = socket.next().await {
            if let Message::Text(text) = message {
                let value: Value = serde_json::from_str(&text).expect("stream messages are JSON");
                received.lock().unwrap().push(value);
            }
        }
    })
}

/// The epoch and the last sequence number the adapter has seen.
fn position(received: &Received) -> (u64, u64) {
    let received = received.lock().unwrap();
    let last = received
        .iter()
        .rev()
        .find(|m| m["type"] == "event" || m["type"] == "snapshot")
        .expect("the stream has said something");
    (
        last["epoch"].as_u64().expect("an epoch"),
        last["seq"].as_u64().expect("a sequence number"),
    )
}

/// How many times each call's number rang in what the adapter received.
fn rung(received: &Received) -> HashMap<String, usize> {
    let mut rung = HashMap::new();
    for message in received.lock().unwrap().iter() {
        let event = &message["event"];
        if message["type"] == "event" && event["kind"] == "call" && event["state"] == "ringing" {
            *rung
                .entry(event["number"].as_str().unwrap_or("-").to_owned())
                .or_insert(0) += 1;
        }
    }
    rung
}

async fn sign_in(http: &Client, gateway: &str) -> String {
    let response = http
        .post(format!("{gateway}/api/v1/sessions"))
        .json(&json!({"email": AGENT_EMAIL, "kustomer_user": {"id": "kus-user-1", "email": AGENT_EMAIL}}))
        .send()
        .await
        .expect("sign-in answered");
    let status = response.status();
    let body: Value = response.json().await.unwrap_or(Value::Null);
    assert_eq!(status, StatusCode::CREATED, "sign-in: {body}");
    body["token"].as_str().expect("a token").to_owned()
}

/// Sends webhook `i`: `true` when the gateway answered 200 (it then owns the event).
async fn send(http: &Client, gateway: &str, i: usize) -> bool {
    let answer = http
        .post(format!("{gateway}/webhooks/ccai/calls"))
        .basic_auth(HOOK_USER, Some(HOOK_PASSWORD))
        .json(&webhook(i))
        .send()
        .await;
    match answer {
        Ok(response) if response.status() == StatusCode::OK => {
            let body: Value = response.json().await.unwrap_or(Value::Null);
            // A retried event the gateway committed just before it died is a duplicate.
            let taken =
                body["accepted"].as_u64().unwrap_or(0) + body["duplicates"].as_u64().unwrap_or(0);
            assert_eq!(taken, 1, "webhook {i}: {body}");
            true
        }
        Ok(response) => panic!("webhook {i}: {}", response.status()),
        // The gateway died before answering: the platform keeps the event and retries.
        Err(_) => false,
    }
}

fn data_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("adapter-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

async fn simulator() -> (String, tokio::sync::oneshot::Sender<()>) {
    let config = adapter_simulator::config::Config::for_tests(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../host"),
    );
    let simulator = adapter_simulator::Simulator::start(config).await.unwrap();
    let (api, _) = simulator.local_addrs().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(simulator.serve(async {
        let _ = stopped.await;
    }));
    (format!("http://{api}"), stop)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_acknowledged_webhook_reaches_a_resuming_adapter_once_across_a_sigkill() {
    let (sim, _stop_sim) = simulator().await;
    let http = Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    let dir = data_dir("event-crash");
    let mut gateway = GatewayProcess::new(
        &dir,
        &dir,
        &[
            "--ccai-url",
            &sim,
            "--kustomer-url",
            &sim,
            "--dev-sign-in",
            "--crm-sync",
            "false",
        ],
        &[
            ("GATEWAY_CALL_WEBHOOK_USER", HOOK_USER),
            ("GATEWAY_CALL_WEBHOOK_PASSWORD", HOOK_PASSWORD),
        ],
    );
    gateway.start();
    gateway.ready(&http).await;
    let url = gateway.url();
    let token = sign_in(&http, &url).await;
    let received: Received = Arc::default();
    let reader = listen(open(&url, &token, None).await, Arc::clone(&received));

    // The burst: CONCURRENCY senders; the gateway is killed once KILL_AFTER are answered, with
    // the others in flight.
    let acknowledged = Arc::new(Mutex::new(vec![false; WEBHOOKS]));
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let answered = Arc::new(tokio::sync::Notify::new());
    let senders: Vec<_> = (0..CONCURRENCY)
        .map(|_| {
            let (http, url) = (http.clone(), url.clone());
            let (acknowledged, next, answered) = (
                Arc::clone(&acknowledged),
                Arc::clone(&next),
                Arc::clone(&answered),
            );
            tokio::spawn(async move {
                loop {
                    let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    if i >= WEBHOOKS || !send(&http, &url, i).await {
                        break;
                    }
                    acknowledged.lock().unwrap()[i] = true;
                    answered.notify_one();
                }
            })
        })
        .collect();
    let deadline = Instant::now() + Duration::from_secs(60);
    while acknowledged.lock().unwrap().iter().filter(|a| **a).count() < KILL_AFTER {
        assert!(Instant::now() < deadline, "the burst stalled");
        let _ = tokio::time::timeout(Duration::from_secs(1), answered.notified()).await;
    }
    gateway.kill();
    for sender in senders {
        sender.await.unwrap();
    }
    reader.await.unwrap();
    let acked: Vec<usize> = (0..WEBHOOKS)
        .filter(|i| acknowledged.lock().unwrap()[*i])
        .collect();
    assert!(
        acked.len() >= KILL_AFTER && acked.len() < WEBHOOKS,
        "killed in the middle of the burst: {} answered",
        acked.len()
    );
    let before_kill = received.lock().unwrap().len();

    // The restart: the adapter resumes from what it saw, on the same epoch.
    gateway.start();
    gateway.ready(&http).await;
    let seen = position(&received);
    let reader = listen(open(&url, &token, Some(seen)).await, Arc::clone(&received));
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let rung = rung(&received);
        if acked.iter().all(|i| rung.contains_key(&number(*i))) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "acknowledged webhooks that never reached the resumed adapter: {:?}",
            acked
                .iter()
                .filter(|i| !rung.contains_key(&number(**i)))
                .collect::<Vec<_>>()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // The platform retries what was not answered; replays of what was are deduplicated.
    let retried = (0..WEBHOOKS).filter(|i| !acknowledged.lock().unwrap()[*i]);
    for i in retried {
        assert!(send(&http, &url, i).await, "retry of webhook {i} answered");
    }
    for i in acked.iter().take(20) {
        let response = http
            .post(format!("{url}/webhooks/ccai/calls"))
            .basic_auth(HOOK_USER, Some(HOOK_PASSWORD))
            .json(&webhook(*i))
            .send()
            .await
            .expect("a replay is answered");
        let body: Value = response.json().await.unwrap_or(Value::Null);
        assert_eq!(body["duplicates"], 1, "replay of webhook {i}: {body}");
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    while rung(&received).len() < WEBHOOKS {
        assert!(
            Instant::now() < deadline,
            "calls that never rang: {}",
            WEBHOOKS - rung(&received).len()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    gateway.kill();
    reader.await.unwrap();

    let received = received.lock().unwrap();
    let rung = {
        let mut counts: HashMap<&str, usize> = HashMap::new();
        for m in received.iter() {
            if m["type"] == "event" && m["event"]["state"] == "ringing" {
                *counts
                    .entry(m["event"]["number"].as_str().unwrap_or("-"))
                    .or_insert(0) += 1;
            }
        }
        counts
    };
    let twice: Vec<_> = rung.iter().filter(|(_, n)| **n > 1).collect();
    assert!(
        twice.is_empty(),
        "calls that rang more than once: {twice:?}"
    );
    // One epoch, and sequence numbers that follow each other across the crash.
    let mut last: Option<u64> = None;
    let epoch = seen.0;
    for (index, message) in received.iter().enumerate() {
        match message["type"].as_str() {
            Some("snapshot") => {
                assert_eq!(index, 0, "only the first connection starts from a snapshot");
                last = message["seq"].as_u64();
            }
            Some("event") => {
                let seq = message["seq"].as_u64().expect("a sequence number");
                assert_eq!(message["epoch"].as_u64(), Some(epoch), "the same epoch");
                assert_eq!(
                    Some(seq),
                    last.map(|l| l + 1),
                    "message {index} (the first {before_kill} before the kill): no gap, no repeat"
                );
                last = Some(seq);
            }
            _ => {}
        }
    }
    println!(
        "event crash: {} of {WEBHOOKS} webhooks answered before the SIGKILL; the resumed adapter \
         received every one of them once; {} messages in all, sequence 1..={} without a gap",
        acked.len(),
        received.len(),
        last.unwrap_or_default()
    );
}
