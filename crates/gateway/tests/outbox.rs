//! The outbox heals by itself: Kustomer down for half an hour, a refused API key, a failed
//! status write-back, and the admin's retries. The gateway runs against the simulator on
//! loopback; its outbox clock ([`adapter_gateway::clock::Clock`]) is moved forward by the test, so
//! half an hour of retries and circuit-breaker probes passes in seconds.

use std::time::Duration;

use adapter_gateway::clock::Clock;
use reqwest::{Client, Method, StatusCode};
use serde_json::{json, Value};

mod support;

const ADMIN: &str = "grace.hopper@example.com";
const AGENT: &str = "ada.lovelace@example.com";
const SIM_KEY: &str = "sim-kustomer-key";

struct Stack {
    gateway: String,
    simulator: String,
    admin_token: String,
    clock: Clock,
    _running: support::Running,
}

async fn sign_in(gateway: &str, email: &str) -> String {
    let (status, body) = support::call(
        Client::new()
            .post(format!("{gateway}/api/v1/sessions"))
            .json(&json!({"email": email, "kustomer_user": {"email": email}})),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "sign-in of {email}: {body}");
    body["token"].as_str().unwrap().to_owned()
}

async fn stack(name: &str) -> Stack {
    let clock = Clock::default();
    let running = support::Start {
        webhooks: true,
        ..support::Start::new(&format!("outbox-{name}"))
    }
    .run({
        let clock = clock.clone();
        |config| {
            config.admin_emails = vec![ADMIN.into()];
            config.crm.crm_sync = true;
            config.crm.clock = clock;
            config.status_refresh_seconds = 0;
        }
    })
    .await;
    let gateway = format!("http://{}", running.gateway);
    let admin_token = sign_in(&gateway, ADMIN).await;
    Stack {
        gateway,
        simulator: format!("http://{}", running.simulator),
        admin_token,
        clock,
        _running: running,
    }
}

impl Stack {
    async fn sim(&self, path: &str, body: Value) {
        let response = Client::new()
            .post(format!("{}{path}", self.simulator))
            .json(&body)
            .send()
            .await
            .unwrap();
        assert!(response.status().is_success(), "{path} {body}");
    }

    async fn admin(&self, method: Method, path: &str, body: Option<Value>) -> (StatusCode, Value) {
        let mut request = Client::new()
            .request(method, format!("{}{path}", self.gateway))
            .bearer_auth(&self.admin_token);
        if let Some(body) = body {
            request = request.json(&body);
        }
        support::call(request).await
    }

    async fn outbox(&self) -> Value {
        let (status, body) = self.admin(Method::GET, "/api/v1/crm/outbox", None).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        body
    }

    async fn health(&self) -> (StatusCode, Value) {
        support::call(Client::new().get(format!("{}/healthz", self.gateway))).await
    }

    /// The Kustomer API requests the simulator answered so far (its request log).
    async fn kustomer_requests(&self) -> usize {
        let state: Value = reqwest::get(format!("{}/_sim/state", self.simulator))
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(state["dropped"], 0, "the simulator's request log is whole");
        state["requests"].as_array().map_or(0, |all| {
            all.iter()
                .filter(|r| r["path"].as_str().unwrap_or_default().starts_with("/v1/"))
                .count()
        })
    }

    async fn kustomer(&self) -> Value {
        let state: Value = reqwest::get(format!("{}/_sim/state", self.simulator))
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        state["kustomer"].clone()
    }

    /// An inbound IVR call from `number`, answered, ended and wrapped up; answers its id.
    async fn inbound_call(&self, number: &str) -> Value {
        let (status, session) = support::call(
            Client::new()
                .post(format!("{}/_sim/scenarios", self.simulator))
                .json(&json!({"kind": "inbound_call", "number": number,
                    "session": {"origin": "ivr", "selected_menu": {"id": 7, "name": "Billing"}}})),
        )
        .await;
        assert!(status.is_success(), "{session}");
        let id = session["id"].clone();
        for action in ["answer", "end"] {
            loop {
                let response = Client::new()
                    .post(format!(
                        "{}/ext/call-control/v1/calls/{id}/{action}",
                        self.simulator
                    ))
                    .basic_auth("demo", Some("sim-token"))
                    .json(&json!({"agent_id": 102}))
                    .send()
                    .await
                    .unwrap();
                // The tenant's 10 requests per second apply to the test's controls too.
                if response.status() != StatusCode::TOO_MANY_REQUESTS {
                    assert!(response.status().is_success(), "{action} {id}");
                    break;
                }
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
        let response = Client::new()
            .post(format!("{}/_sim/calls/{id}/wrap_up_done", self.simulator))
            .send()
            .await
            .unwrap();
        assert!(response.status().is_success());
        id
    }

    /// Waits until the slow request the faults asked for has reached Kustomer (30 s at most).
    async fn until_the_slow_request_started(&self) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        while self.kustomer().await["limits"]["slow_left"] != 0 {
            assert!(
                tokio::time::Instant::now() < deadline,
                "the slow request never started"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Polls the admin view until `done` says so (30 s at most).
    async fn until(&self, what: &str, done: impl Fn(&Value) -> bool) -> Value {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        loop {
            let outbox = self.outbox().await;
            if done(&outbox) {
                return outbox;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "{what}: not reached: {outbox}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Every webhook delivered, nothing left in the inbox or pending.
    async fn settled(&self) -> Value {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
        loop {
            let state: Value = reqwest::get(format!("{}/_sim/state", self.simulator))
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            let delivered = state["webhooks"]
                .as_array()
                .is_some_and(|w| w.iter().all(|d| d["state"] == "delivered"));
            let outbox = self.outbox().await;
            if delivered && outbox["inbox"] == 0 && outbox["pending"] == 0 {
                return outbox;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "not settled: {outbox}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

fn list<'a>(kustomer: &'a Value, what: &str) -> Vec<&'a Value> {
    kustomer[what]
        .as_array()
        .map(|a| a.iter().collect())
        .unwrap_or_default()
}

/// Every record written for the calls, exactly once.
fn assert_written_once(kustomer: &Value, calls: &[Value]) {
    assert_eq!(list(kustomer, "customers").len(), calls.len(), "customers");
    assert_eq!(
        list(kustomer, "conversations").len(),
        calls.len(),
        "conversations"
    );
    for id in calls {
        for (what, external_id) in [
            ("messages", format!("ccai-call-{id}-message")),
            ("notes", format!("ccai-call-{id}-phone")),
        ] {
            let count = list(kustomer, what)
                .iter()
                .filter(|m| m["externalId"] == external_id.as_str())
                .count();
            assert_eq!(count, 1, "call {id}: {what} {external_id}");
        }
    }
}

#[tokio::test]
async fn kustomer_down_for_30_minutes_dead_letters_nothing_and_everything_lands_once_after() {
    let started = std::time::Instant::now();
    let stack = stack("down-30-min").await;
    // Kustomer answers every request with a 500 until told otherwise.
    stack
        .sim("/_sim/kustomer/faults", json!({"server_errors": u32::MAX}))
        .await;
    let mut calls = Vec::new();
    for i in 0..3 {
        calls.push(
            stack
                .inbound_call(&format!("+1415555{:04}", 4100 + i))
                .await,
        );
    }
    // A storm of 5xx opens the breaker: all Kustomer work pauses, and says so.
    let outbox = stack
        .until("the breaker opens", |o| o["kustomer"]["status"] == "paused")
        .await;
    assert!(
        outbox["kustomer"]["reason"]
            .as_str()
            .unwrap_or_default()
            .contains("HTTP 500"),
        "{outbox}"
    );
    let (status, health) = stack.health().await;
    assert_eq!(status, StatusCode::OK, "{health}");
    assert_eq!(health["status"], "ok", "agents' work goes on: {health}");
    assert_eq!(health["kustomer"]["status"], "paused", "{health}");

    // Half an hour on the outbox's clock, a minute at a time: each minute lets a probe through,
    // which fails; nothing is ever dead-lettered.
    let failed_before = stack.kustomer_requests().await;
    for minute in 1..=30 {
        let before = stack.outbox().await["kustomer"]["next_probe_ms"].clone();
        stack.clock.advance(Duration::from_secs(60));
        let outbox = stack
            .until(&format!("minute {minute}: a probe"), |o| {
                o["kustomer"]["next_probe_ms"] != before
            })
            .await;
        assert_eq!(outbox["dead"], 0, "minute {minute}: {outbox}");
        assert_eq!(outbox["kustomer"]["status"], "paused", "minute {minute}");
    }
    let outbox = stack.outbox().await;
    assert!(
        outbox["oldest_pending_age_ms"].as_i64().unwrap_or(0) >= 30 * 60_000,
        "the operations have waited half an hour: {outbox}"
    );
    let tried = stack.kustomer_requests().await - failed_before;
    assert!(
        (30..=40).contains(&tried),
        "one probe a minute while paused, not a retry storm: {tried} requests"
    );
    println!("30 minutes paused: {tried} Kustomer requests (probes), 0 dead letters");

    // Kustomer answers again: the next probe resumes the outbox by itself.
    stack.sim("/_sim/kustomer/faults", json!({})).await;
    stack.clock.advance(Duration::from_secs(60));
    let outbox = stack.settled().await;
    assert_eq!(outbox["dead"], 0, "{outbox}");
    assert_eq!(outbox["held"], 0, "{outbox}");
    assert_eq!(outbox["kustomer"]["status"], "ok", "{outbox}");
    assert_written_once(&stack.kustomer().await, &calls);
    let (_, health) = stack.health().await;
    assert_eq!(health["kustomer"]["status"], "ok", "{health}");
    println!(
        "half an hour of outage simulated in {:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn a_refused_api_key_pauses_the_outbox_and_it_resumes_when_the_key_works_again() {
    let stack = stack("key-refused").await;
    // An admin rotates the org's key in Kustomer: the gateway's is refused (401).
    stack
        .sim("/_sim/kustomer/api-key", json!({"api_key": "rotated-key"}))
        .await;
    let call = stack.inbound_call("+14155554200").await;
    // One refusal is enough: the breaker opens at once, nothing dead-letters.
    let outbox = stack
        .until("the breaker opens", |o| o["kustomer"]["status"] == "paused")
        .await;
    assert!(
        outbox["kustomer"]["reason"]
            .as_str()
            .unwrap_or_default()
            .contains("API key"),
        "{outbox}"
    );
    assert_eq!(outbox["dead"], 0, "{outbox}");
    let (status, health) = stack.health().await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(health["kustomer"]["status"], "paused", "{health}");
    assert!(
        health["kustomer"]["message"]
            .as_str()
            .unwrap_or_default()
            .contains("resumes by itself"),
        "{health}"
    );
    // Probes keep failing while the key is refused.
    for _ in 0..3 {
        let before = stack.outbox().await["kustomer"]["next_probe_ms"].clone();
        stack.clock.advance(Duration::from_secs(60));
        let outbox = stack
            .until("a probe", |o| o["kustomer"]["next_probe_ms"] != before)
            .await;
        assert_eq!(outbox["kustomer"]["status"], "paused", "{outbox}");
        assert_eq!(outbox["dead"], 0, "{outbox}");
    }
    assert_eq!(list(&stack.kustomer().await, "conversations").len(), 0);

    // The key works again (the rotation is undone): the outbox resumes by itself.
    stack
        .sim("/_sim/kustomer/api-key", json!({"api_key": SIM_KEY}))
        .await;
    stack.clock.advance(Duration::from_secs(60));
    let outbox = stack.settled().await;
    assert_eq!(outbox["kustomer"]["status"], "ok", "{outbox}");
    assert_eq!(outbox["dead"], 0, "{outbox}");
    assert_written_once(&stack.kustomer().await, &[call]);
}

/// The routing status of the user's active work session in the simulated Kustomer.
async fn kustomer_status(stack: &Stack, user: &str) -> String {
    let value: Value = Client::new()
        .get(format!(
            "{}/v1/routing/users/{user}/work-sessions",
            stack.simulator
        ))
        .bearer_auth(SIM_KEY)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    value["data"]
        .as_array()
        .and_then(|list| list.iter().find(|w| w["attributes"]["active"] == true))
        .and_then(|w| w["relationships"]["status"]["data"]["id"].as_str())
        .unwrap_or_default()
        .to_owned()
}

#[tokio::test]
async fn a_failed_write_back_is_retried_and_lands_and_the_status_change_does_not_wait_for_it() {
    let stack = stack("write-back").await;
    let settings = json!({
        "enabled": true, "rule": "latest_wins", "bidirectional": true,
        "mapping": {"rs-available": 0, "rs-lunch": -4, "rs-email": -1},
        "kustomer_statuses": [{"id": "rs-available", "name": "Available"},
            {"id": "rs-lunch", "name": "Lunch"}, {"id": "rs-email", "name": "Email only"}],
    });
    let (status, body) = stack
        .admin(Method::PUT, "/api/v1/status-inheritance", Some(settings))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    // Kustomer fails the next three writes to Grace's work session.
    stack
        .sim(
            "/_sim/kustomer/faults",
            json!({"server_errors": 3, "method": "PUT", "path_ends_with": "/work-sessions/ws-kus-user-2"}),
        )
        .await;
    let started = std::time::Instant::now();
    let (status, body) = stack
        .admin(
            Method::PUT,
            "/api/v1/status",
            Some(json!({"status_id": -4})),
        )
        .await;
    let answered_in = started.elapsed();
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(
        answered_in < Duration::from_secs(2),
        "the status change answers without waiting for Kustomer: {answered_in:?}"
    );
    assert_eq!(kustomer_status(&stack, "kus-user-2").await, "rs-available");
    // Retried with backoff (the outbox's clock moves on) until it lands.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while kustomer_status(&stack, "kus-user-2").await != "rs-lunch" {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the write-back never landed: {}",
            stack.outbox().await
        );
        stack.clock.advance(Duration::from_secs(10));
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let limits = &stack.kustomer().await["limits"];
    assert_eq!(
        limits["server_errors_left"], 0,
        "the three failures happened"
    );
    let outbox = stack.settled().await;
    assert_eq!(outbox["dead"], 0, "{outbox}");
    assert_eq!(
        outbox["kustomer"]["status"], "ok",
        "three failures are no storm"
    );
}

/// The agents' status write-backs and the CRM sync take turns at the workers: a backlog of calls
/// waiting on a slow Kustomer does not hold an agent's status change back until it has drained.
#[tokio::test]
async fn a_backlog_of_calls_does_not_hold_back_a_status_write_back() {
    let stack = stack("turns").await;
    let settings = json!({
        "enabled": true, "rule": "latest_wins", "bidirectional": true,
        "mapping": {"rs-available": 0, "rs-lunch": -4},
        "kustomer_statuses": [{"id": "rs-available", "name": "Available"},
            {"id": "rs-lunch", "name": "Lunch"}],
    });
    let (status, body) = stack
        .admin(Method::PUT, "/api/v1/status-inheritance", Some(settings))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    // Every record Kustomer creates takes 2 s: sixteen calls, some eighty creates, keep the
    // gateway's 8 workers busy for about 20 s. Taken in the order they were stored, the
    // write-back would wait until fewer calls than workers are left (10 s and more).
    stack
        .sim(
            "/_sim/kustomer/faults",
            json!({"slow": 1000, "latency_ms": 2000, "method": "POST"}),
        )
        .await;
    for i in 0..16 {
        stack.inbound_call(&format!("+1415555{i:04}")).await;
    }
    stack
        .until("a backlog of the calls' operations", |o| {
            o["inbox"] == 0 && o["pending"].as_i64().unwrap_or(0) >= 30
        })
        .await;
    let started = std::time::Instant::now();
    let (status, body) = stack
        .admin(
            Method::PUT,
            "/api/v1/status",
            Some(json!({"status_id": -4})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(6);
    while kustomer_status(&stack, "kus-user-2").await != "rs-lunch" {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the write-back waited behind the calls: {}",
            stack.outbox().await
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let took = started.elapsed();
    let outbox = stack.outbox().await;
    assert!(
        outbox["pending"].as_i64().unwrap_or(0) > 0,
        "the calls were still waiting when the status landed: {outbox}"
    );
    println!(
        "status write-back landed in {took:?} with {} call operations still waiting",
        outbox["pending"]
    );
}

#[tokio::test]
async fn the_policy_memory_survives_a_restart() {
    use adapter_core::status_policy::Source;
    use adapter_gateway::{inheritance::Inheritance, store::Store};
    let dir = std::env::temp_dir().join(format!("adapter-test-memory-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let store = Store::for_tests(&dir).await.unwrap();
    let inheritance = Inheritance::load(&store.pool()).await.unwrap();
    inheritance
        .remember(102, Source::Kustomer, 1_700_000_000_000, true)
        .await;
    inheritance
        .remember(102, Source::Adapter, 1_700_000_005_000, false)
        .await;
    let before = inheritance.memory(102);
    assert_eq!(before.next_by, Some((Source::Kustomer, 1_700_000_000_000)));
    assert_eq!(
        before.last_change,
        Some((Source::Adapter, 1_700_000_005_000))
    );
    drop(inheritance);
    store.close().await;
    let store = Store::for_tests(&dir).await.unwrap();
    let restarted = Inheritance::load(&store.pool()).await.unwrap();
    assert_eq!(restarted.memory(102), before, "kept across the restart");
    assert_eq!(restarted.memory(103), Default::default());
}

#[tokio::test]
async fn admins_retry_a_sessions_dead_letters_and_everything_dead_and_agents_cannot() {
    let stack = stack("admin-retry").await;
    // The admin maps SDK data to a field Kustomer does not have: writing it is refused (400),
    // a dead letter in each session; the rest of the sessions is written.
    let (status, body) = stack
        .admin(
            Method::PUT,
            "/api/v1/crm/settings",
            Some(json!({"mapping": [{"sdk_key": "order", "field": "orderIdStr"}]})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    for i in 0..2 {
        let (status, chat) = support::call(
            Client::new()
                .post(format!("{}/_sim/scenarios", stack.simulator))
                .json(&json!({"kind": "chat", "session": {"origin": "mobile_sdk",
                    "end_user": {"identifier": format!("app-user-{i}"), "name": "Jean"},
                    "custom_data": {"order": {"label": "Order", "value": "A-17", "type": "string"}}}})),
        )
        .await;
        assert!(status.is_success(), "{chat}");
    }
    stack
        .until("two dead letters", |o| o["dead"] == 2 && o["pending"] == 0)
        .await;
    let (_, dead) = stack
        .admin(Method::GET, "/api/v1/crm/dead-letters", None)
        .await;
    let dead = dead["dead_letters"].as_array().unwrap().clone();
    assert!(
        dead.iter().all(|d| d["operation"] == "update_conversation"
            && d["reason"]
                .as_str()
                .unwrap_or_default()
                .contains("orderIdStr")),
        "{dead:?}"
    );
    assert_eq!(list(&stack.kustomer().await, "conversations").len(), 2);
    let session_of = |d: &Value| d["session_id"].as_i64().unwrap();

    // An agent who is not an admin may not retry.
    let agent = sign_in(&stack.gateway, AGENT).await;
    for path in [
        format!("/api/v1/crm/sessions/{}/retry", session_of(&dead[0])),
        "/api/v1/crm/dead-letters/retry".to_owned(),
    ] {
        let (status, body) = support::call(
            Client::new()
                .post(format!("{}{path}", stack.gateway))
                .bearer_auth(&agent),
        )
        .await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{path}: {body}");
        assert_eq!(support::code(&body), "admins_only");
    }
    assert_eq!(stack.outbox().await["dead"], 2);

    // The Kustomer admin defines the field; the adapter's admin retries one session.
    let response = Client::new()
        .put(format!("{}/v1/metadata/conversation", stack.simulator))
        .bearer_auth(SIM_KEY)
        .json(&json!({"properties": {"orderIdStr": {"displayName": "Order"}}}))
        .send()
        .await
        .unwrap();
    assert!(response.status().is_success());
    let first = session_of(&dead[0]);
    let (status, body) = stack
        .admin(
            Method::POST,
            &format!("/api/v1/crm/sessions/{first}/retry"),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["released"], 1, "{body}");
    stack
        .until("the first session lands", |o| {
            o["dead"] == 1 && o["pending"] == 0
        })
        .await;
    let mapped = |kustomer: &Value| {
        list(kustomer, "conversations")
            .iter()
            .filter(|c| c["custom"]["orderIdStr"] == "A-17")
            .count()
    };
    assert_eq!(mapped(&stack.kustomer().await), 1);
    let (status, body) = stack
        .admin(
            Method::POST,
            &format!("/api/v1/crm/sessions/{first}/retry"),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "nothing dead left: {body}");

    // Then everything dead.
    let (status, body) = stack
        .admin(Method::POST, "/api/v1/crm/dead-letters/retry", None)
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let outbox = stack.settled().await;
    assert_eq!(outbox["dead"], 0, "{outbox}");
    assert_eq!(outbox["held"], 0, "{outbox}");
    let kustomer = stack.kustomer().await;
    assert_eq!(list(&kustomer, "conversations").len(), 2);
    assert_eq!(mapped(&kustomer), 2);
}

#[tokio::test]
async fn a_sessions_later_operations_wait_behind_its_dead_letter_and_go_with_its_retry() {
    let stack = stack("held").await;
    // Kustomer refuses the conversation once (400): a dead letter at once.
    stack
        .sim(
            "/_sim/kustomer/faults",
            json!({"client_errors": 1, "method": "POST", "path_ends_with": "/v1/conversations"}),
        )
        .await;
    let call = stack.inbound_call("+14155554300").await;
    let outbox = stack
        .until(
            "the conversation is a dead letter and the rest waits",
            |o| {
                o["dead"] == 1
                    && o["pending"] == 0
                    && o["inbox"] == 0
                    && o["held"].as_i64() >= Some(3)
            },
        )
        .await;
    let (_, dead) = stack
        .admin(Method::GET, "/api/v1/crm/dead-letters", None)
        .await;
    let dead = &dead["dead_letters"][0];
    assert_eq!(dead["operation"], "resolve_conversation", "{dead}");
    let kustomer = stack.kustomer().await;
    assert_eq!(list(&kustomer, "conversations").len(), 0);
    assert_eq!(
        list(&kustomer, "messages").len() + list(&kustomer, "notes").len(),
        0,
        "held, not tried: {outbox}"
    );

    let session = dead["session_id"].as_i64().unwrap();
    let (status, body) = stack
        .admin(
            Method::POST,
            &format!("/api/v1/crm/sessions/{session}/retry"),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["released"], outbox["held"].as_i64().unwrap() + 1);
    let outbox = stack.settled().await;
    assert_eq!(
        (outbox["dead"].as_i64(), outbox["held"].as_i64()),
        (Some(0), Some(0))
    );
    assert_written_once(&stack.kustomer().await, &[call]);
}

#[tokio::test]
async fn a_slow_operation_does_not_hold_up_the_other_sessions() {
    let stack = stack("slow").await;
    // The next note Kustomer receives is answered after 8 s.
    stack
        .sim(
            "/_sim/kustomer/faults",
            json!({"slow": 1, "latency_ms": 8000, "method": "POST", "path_ends_with": "/notes"}),
        )
        .await;
    let first = stack.inbound_call("+14155554400").await;
    stack.until_the_slow_request_started().await;
    let slow_since = std::time::Instant::now();
    // A call that comes in meanwhile is written whole while that note still waits.
    let second = stack.inbound_call("+14155554401").await;
    let note = |id: &Value| format!("ccai-call-{id}-phone");
    loop {
        let kustomer = stack.kustomer().await;
        let notes: Vec<&Value> = list(&kustomer, "notes");
        if notes
            .iter()
            .any(|n| n["externalId"] == note(&second).as_str())
        {
            assert!(
                !notes
                    .iter()
                    .any(|n| n["externalId"] == note(&first).as_str()),
                "the slow note is still on its way"
            );
            break;
        }
        assert!(
            slow_since.elapsed() < Duration::from_secs(8),
            "the second call waited for the first one's slow note: {}",
            stack.outbox().await
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let written_in = slow_since.elapsed();
    let outbox = stack.settled().await;
    assert_eq!(outbox["dead"], 0, "{outbox}");
    assert_written_once(&stack.kustomer().await, &[first, second]);
    println!("second call written {written_in:?} into the first one's 8 s note");
}

#[tokio::test]
async fn a_status_change_answers_at_once_while_the_kustomer_budget_is_spent() {
    // The org's budget is one request a minute, and sign-in spent it.
    let clock = Clock::default();
    let running = support::Start::new("outbox-budget-spent")
        .run({
            let clock = clock.clone();
            |config| {
                config.admin_emails = vec![ADMIN.into()];
                config.crm.kustomer_rate_limit = 1;
                config.crm.clock = clock;
                config.status_refresh_seconds = 0;
            }
        })
        .await;
    let gateway = format!("http://{}", running.gateway);
    let token = sign_in(&gateway, ADMIN).await;
    let settings = json!({
        "enabled": true, "rule": "latest_wins", "bidirectional": true,
        "mapping": {"rs-available": 0, "rs-lunch": -4},
        "kustomer_statuses": [{"id": "rs-available", "name": "Available"},
            {"id": "rs-lunch", "name": "Lunch"}],
    });
    let (status, body) = support::call(
        Client::new()
            .put(format!("{gateway}/api/v1/status-inheritance"))
            .bearer_auth(&token)
            .json(&settings),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let started = std::time::Instant::now();
    let (status, body) = support::call(
        Client::new()
            .put(format!("{gateway}/api/v1/status"))
            .bearer_auth(&token)
            .json(&json!({"status_id": -4})),
    )
    .await;
    let answered_in = started.elapsed();
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(
        answered_in < Duration::from_secs(1),
        "answered in {answered_in:?} while the write-back waits for the next minute's budget"
    );
    // The write-back waits in the outbox (the CRM sync itself is off here).
    let (_, outbox) = support::call(
        Client::new()
            .get(format!("{gateway}/api/v1/crm/outbox"))
            .bearer_auth(&token),
    )
    .await;
    assert_eq!(outbox["pending"], 1, "{outbox}");
    println!("PUT /status answered in {answered_in:?} with the Kustomer budget spent");
}

/// A claim is fenced: the worker whose lease another worker took (as after a pause past its
/// lease: a stalled process, a replica cut off from the store) stops its operation at its next
/// renewal and records nothing; the holder carries the operation on, and it lands once.
#[tokio::test]
async fn a_worker_whose_lease_was_taken_stops_and_records_nothing() {
    let stack = stack("fenced").await;
    // The next note Kustomer receives is answered after 8 s: its worker holds the row meanwhile.
    stack
        .sim(
            "/_sim/kustomer/faults",
            json!({"slow": 1, "latency_ms": 8000, "method": "POST", "path_ends_with": "/notes"}),
        )
        .await;
    let call = stack.inbound_call("+14155554500").await;
    stack.until_the_slow_request_started().await;
    let slow_since = std::time::Instant::now();
    let store = adapter_gateway::store::Store::for_tests(&stack._running.data_dir)
        .await
        .expect("the store opens")
        .pool();
    let now_ms = || {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis() as i64
    };
    // Another worker claims the row the way the executor does: the attempts count (the claim's
    // fencing token) goes up, and the lease is the other's for a minute.
    let leased: Vec<(i64, i64)> = sqlx::query_as(
        "SELECT seq, attempts FROM crm_outbox WHERE state = 'pending' AND lease_until_ms > $1",
    )
    .bind(now_ms())
    .fetch_all(&store)
    .await
    .unwrap();
    assert_eq!(leased.len(), 1, "only the slow note is running: {leased:?}");
    let (seq, attempts) = leased[0];
    let taken = sqlx::query(
        "UPDATE crm_outbox SET attempts = attempts + 1, lease_until_ms = $1 WHERE seq = $2 AND attempts = $3",
    )
    .bind(now_ms() + 60_000)
    .bind(seq)
    .bind(attempts)
    .execute(&store)
    .await
    .unwrap();
    assert_eq!(taken.rows_affected(), 1);
    // Past the slow answer: the first worker never recorded an outcome over the new holder's.
    while slow_since.elapsed() < Duration::from_secs(9) {
        let (state, now_attempts): (String, i64) =
            sqlx::query_as("SELECT state, attempts FROM crm_outbox WHERE seq = $1")
                .bind(seq)
                .fetch_one(&store)
                .await
                .unwrap();
        assert_eq!(
            (state.as_str(), now_attempts),
            ("pending", attempts + 1),
            "the worker that lost its lease wrote its outcome"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let metrics = reqwest::get(format!("{}/metrics", stack.gateway))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics
            .lines()
            .any(|l| l.starts_with("gateway_crm_operations_total{outcome=\"lease_lost\"} 1")),
        "the stopped attempt is counted: {metrics}"
    );
    // The other worker goes away without finishing: its lease runs out, the row is claimed
    // again, and what the stopped attempt may have written is looked for before writing.
    sqlx::query("UPDATE crm_outbox SET lease_until_ms = 0 WHERE seq = $1")
        .bind(seq)
        .execute(&store)
        .await
        .unwrap();
    let outbox = stack.settled().await;
    assert_eq!(outbox["dead"], 0, "{outbox}");
    assert_written_once(&stack.kustomer().await, &[call]);
}

/// A call's conversation is created assigned to the answering agent, and a caller who reaches
/// the same agent again finds it assigned: neither sends a request of its own to assign it, and
/// a customer created by the call has no conversations to list.
#[tokio::test]
async fn a_conversation_created_or_found_assigned_costs_no_assignment_request() {
    let stack = stack("assigned").await;
    let requests = || async {
        let state: Value = reqwest::get(format!("{}/_sim/state", stack.simulator))
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        state["requests"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| {
                format!(
                    "{} {}",
                    r["method"].as_str().unwrap(),
                    r["path"].as_str().unwrap()
                )
            })
            .filter(|r| r.contains(" /v1/"))
            .collect::<Vec<_>>()
    };
    let assignments = |log: &[String]| {
        log.iter()
            .filter(|r| r.starts_with("PUT /v1/conversations/"))
            .count()
    };
    let listings = |log: &[String]| {
        log.iter()
            .filter(|r| r.starts_with("GET /v1/customers/") && r.ends_with("/conversations"))
            .count()
    };
    let first = stack.inbound_call("+14155554600").await;
    stack.settled().await;
    let after_first = requests().await;
    assert_eq!(assignments(&after_first), 0, "{after_first:#?}");
    assert_eq!(listings(&after_first), 0, "{after_first:#?}");
    let kustomer = stack.kustomer().await;
    let conversations = list(&kustomer, "conversations");
    assert_eq!(conversations.len(), 1);
    assert_eq!(
        conversations[0]["assignedUsers"].as_array().map(Vec::len),
        Some(1),
        "created assigned: {}",
        conversations[0]
    );
    // The same caller again, answered by the same agent: appended to the Open conversation.
    let second = stack.inbound_call("+14155554600").await;
    stack.settled().await;
    let after_second = requests().await;
    let new = &after_second[after_first.len()..];
    assert_eq!(
        listings(new),
        1,
        "the returning caller's are listed: {new:#?}"
    );
    assert_eq!(assignments(new), 0, "already the agent's: {new:#?}");
    let kustomer = stack.kustomer().await;
    assert_eq!(list(&kustomer, "conversations").len(), 1, "appended");
    for id in [&first, &second] {
        let external_id = format!("ccai-call-{id}-message");
        assert_eq!(
            list(&kustomer, "messages")
                .iter()
                .filter(|m| m["externalId"] == external_id.as_str())
                .count(),
            1
        );
    }
}
