//! Behaviours `docs/agent-api.md` and `docs/crm-sync.md` promise that no other test covered,
//! each test named after the behaviour and driven through the gateway's HTTP API and event
//! stream, with the simulator as the CCAI Platform and the Kustomer org.

use std::time::Duration;

use reqwest::{Client, Method, StatusCode};
use serde_json::{json, Value};

mod support;

use support::{
    call, code, eventually, ok, open_stream, sign_in, stream_close, stream_next, StreamNext,
};

/// Grace (agent 102) administers the adapter in these tests; Alan (103) does not.
const ADMIN: &str = "grace.hopper@example.com";
const AGENT: &str = "alan.turing@example.com";
const GRACE: i64 = 102;

async fn started(name: &str, webhooks: bool, crm_sync: bool) -> support::Running {
    support::Start {
        webhooks,
        ..support::Start::new(&format!("documented-{name}"))
    }
    .run(|config| {
        config.admin_emails = vec![ADMIN.into()];
        config.crm.crm_sync = crm_sync;
        config.status_refresh_seconds = 0;
    })
    .await
}

/// The stream's first message, which must be its snapshot.
async fn snapshot(socket: &mut support::Socket) -> Value {
    match stream_next(socket, Duration::from_secs(10)).await {
        StreamNext::Message(m) if m["type"] == "snapshot" => m,
        other => panic!("the stream starts with a snapshot, not {other:?}"),
    }
}

fn request(
    method: Method,
    url: String,
    token: &str,
    body: Option<Value>,
) -> reqwest::RequestBuilder {
    let request = Client::new().request(method, url).bearer_auth(token);
    match body {
        Some(body) => request.json(&body),
        None => request,
    }
}

/// One inbound call to Grace, answered, ended by the customer and wrapped up on the platform;
/// its simulator id.
async fn answered_call(simulator: &str, number: &str) -> i64 {
    support::answered_call(simulator, GRACE, number).await
}

#[tokio::test]
async fn sign_out_closes_the_sessions_open_streams_with_4001() {
    let running = started("sign-out", false, false).await;
    let gateway = running.gateway_url();
    let token = sign_in(&gateway, ADMIN).await;
    let mut socket = open_stream(&gateway, &token).await;
    snapshot(&mut socket).await;
    let (status, body) = call(
        Client::new()
            .delete(format!("{gateway}/api/v1/sessions"))
            .bearer_auth(&token),
    )
    .await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    // At the stream's next heartbeat (every 15 s).
    let closed = stream_close(&mut socket, Duration::from_secs(30)).await;
    assert_eq!(closed, Some((4001, "session ended".to_owned())));
}

#[tokio::test]
async fn a_stopping_gateway_closes_every_stream_with_1012() {
    let mut running = started("shutdown", false, false).await;
    let gateway = running.gateway_url();
    let token = sign_in(&gateway, ADMIN).await;
    let mut socket = open_stream(&gateway, &token).await;
    snapshot(&mut socket).await;
    let stopping = tokio::spawn(async move {
        running.stop_gateway().await;
        running
    });
    let closed = stream_close(&mut socket, Duration::from_secs(30)).await;
    assert_eq!(closed, Some((1012, "gateway restarting".to_owned())));
    stopping.await.expect("the gateway stopped");
}

#[tokio::test]
async fn the_crm_admin_endpoints_refuse_agents_who_are_not_admins() {
    let running = started("crm-admins", false, true).await;
    let gateway = running.gateway_url();
    let agent = sign_in(&gateway, AGENT).await;
    for (method, path, body) in [
        (Method::POST, "/api/v1/crm/custom-fields", None),
        (Method::GET, "/api/v1/crm/settings", None),
        (
            Method::PUT,
            "/api/v1/crm/settings",
            Some(json!({"create_abandoned": false})),
        ),
        (Method::GET, "/api/v1/crm/outbox", None),
        (Method::GET, "/api/v1/crm/dead-letters", None),
        (Method::POST, "/api/v1/crm/dead-letters/1/retry", None),
    ] {
        let (status, answer) = call(request(
            method.clone(),
            format!("{gateway}{path}"),
            &agent,
            body,
        ))
        .await;
        assert_eq!(
            (status, code(&answer)),
            (StatusCode::FORBIDDEN, "admins_only"),
            "{method} {path}: {answer}"
        );
    }
    // Nothing changed: the admin reads the settings as they were, and Kustomer got no fields.
    let admin = sign_in(&gateway, ADMIN).await;
    let settings = ok(
        "the admin reads the settings",
        request(
            Method::GET,
            format!("{gateway}/api/v1/crm/settings"),
            &admin,
            None,
        ),
    )
    .await;
    assert_eq!(settings["create_abandoned"], true, "{settings}");
    let writes = ok(
        "Kustomer's write log",
        Client::new().get(format!("{}/_sim/kustomer/writes", running.simulator_url())),
    )
    .await;
    assert_eq!(writes, json!([]), "no write reached Kustomer");
}

#[tokio::test]
async fn with_the_crm_sync_off_calls_reach_the_agent_and_nothing_is_written_to_kustomer() {
    let running = started("crm-off", true, false).await;
    let gateway = running.gateway_url();
    let token = sign_in(&gateway, ADMIN).await;
    let mut socket = open_stream(&gateway, &token).await;
    snapshot(&mut socket).await;
    let id = answered_call(&running.simulator_url(), "+14155552671").await;
    // The stream shows the call through to its end: every one of its events was taken.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    let mut states = Vec::new();
    while !states.iter().any(|s| s == "ended") {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        match stream_next(&mut socket, left).await {
            StreamNext::Message(m) if m["event"]["kind"] == "call" => {
                states.push(m["event"]["state"].as_str().unwrap_or("-").to_owned());
            }
            StreamNext::Message(_) => {}
            StreamNext::Closed(frame) => panic!("the stream closed: {frame:?} after {states:?}"),
        }
    }
    assert!(
        states.contains(&"connected".to_owned()),
        "call {id}: {states:?}"
    );
    let outbox = ok(
        "the outbox",
        request(
            Method::GET,
            format!("{gateway}/api/v1/crm/outbox"),
            &token,
            None,
        ),
    )
    .await;
    // The events wait in the inbox (dropped at the next start with the sync off): never planned.
    assert_eq!(
        (
            &outbox["enabled"],
            &outbox["pending"],
            &outbox["done"],
            &outbox["dead"]
        ),
        (&json!(false), &json!(0), &json!(0), &json!(0)),
        "{outbox}"
    );
    let writes = ok(
        "Kustomer's write log",
        Client::new().get(format!("{}/_sim/kustomer/writes", running.simulator_url())),
    )
    .await;
    assert_eq!(writes, json!([]), "no write reached Kustomer");
}

#[tokio::test]
async fn a_write_kustomer_refuses_becomes_a_dead_letter_that_an_admin_lists_and_retries() {
    let running = started("dead-letters", true, true).await;
    let gateway = running.gateway_url();
    let simulator = running.simulator_url();
    let token = sign_in(&gateway, ADMIN).await;
    // Kustomer refuses the conversation's creation once (a 400: the request itself, permanent; a
    // refused key would pause the outbox instead, `tests/outbox.rs`).
    ok(
        "the Kustomer fault",
        Client::new()
            .post(format!("{simulator}/_sim/kustomer/faults"))
            .json(&json!({"client_errors": 1, "method": "POST", "path_ends_with": "/v1/conversations"})),
    )
    .await;
    let id = answered_call(&simulator, "+14155550177").await;
    let outbox_url = format!("{gateway}/api/v1/crm/outbox");
    let dead_url = format!("{gateway}/api/v1/crm/dead-letters");
    // Settled with dead letters: nothing left to plan or run.
    let dead = eventually(
        "the call's operations settle",
        Duration::from_secs(60),
        || async {
            let outbox = ok(
                "the outbox",
                request(Method::GET, outbox_url.clone(), &token, None),
            )
            .await;
            if outbox["inbox"] == 0 && outbox["pending"] == 0 && outbox["dead"].as_i64() > Some(0) {
                let dead = ok(
                    "the dead letters",
                    request(Method::GET, dead_url.clone(), &token, None),
                )
                .await;
                Ok(dead["dead_letters"].as_array().cloned().unwrap_or_default())
            } else {
                Err(outbox.to_string())
            }
        },
    )
    .await;
    let conversation = dead
        .iter()
        .find(|d| d["operation"] == "resolve_conversation")
        .unwrap_or_else(|| panic!("the conversation's creation is a dead letter: {dead:?}"));
    assert!(
        conversation["reason"]
            .as_str()
            .is_some_and(|r| r.contains("Simulated refusal")),
        "with Kustomer's reason: {conversation}"
    );
    assert_eq!(
        conversation["attempts"], 1,
        "a permanent failure is not retried: {conversation}"
    );
    // An unknown dead letter is said to be unknown.
    let (status, answer) = call(request(
        Method::POST,
        format!("{dead_url}/999999/retry"),
        &token,
        None,
    ))
    .await;
    assert_eq!(
        (status, code(&answer)),
        (StatusCode::NOT_FOUND, "unknown_dead_letter"),
        "{answer}"
    );
    // The admin retries them all (Kustomer takes them now): the call is written.
    for letter in &dead {
        let (status, answer) = call(request(
            Method::POST,
            format!("{dead_url}/{}/retry", letter["seq"]),
            &token,
            None,
        ))
        .await;
        assert_eq!(status, StatusCode::NO_CONTENT, "retry {letter}: {answer}");
    }
    let kustomer = eventually(
        "the retried operations are done",
        Duration::from_secs(60),
        || async {
            let outbox = ok(
                "the outbox",
                request(Method::GET, outbox_url.clone(), &token, None),
            )
            .await;
            if outbox["pending"] == 0 && outbox["dead"] == 0 {
                let state = ok(
                    "the simulator's state",
                    Client::new().get(format!("{simulator}/_sim/state")),
                )
                .await;
                Ok(state["kustomer"].clone())
            } else {
                Err(outbox.to_string())
            }
        },
    )
    .await;
    let conversations: Vec<&Value> = kustomer["conversations"]
        .as_array()
        .map(|c| c.iter().collect())
        .unwrap_or_default();
    assert_eq!(conversations.len(), 1, "{conversations:?}");
    assert_eq!(conversations[0]["externalId"], format!("ccai-call-{id}"));
    let message = kustomer["messages"]
        .as_array()
        .and_then(|m| {
            m.iter()
                .find(|m| m["externalId"] == format!("ccai-call-{id}-message"))
        })
        .unwrap_or_else(|| panic!("the call's message: {}", kustomer["messages"]));
    assert_eq!(message["conversation"], conversations[0]["id"]);
}

#[tokio::test]
async fn a_wrong_kustomer_api_key_refuses_sign_in_with_kustomer_unavailable() {
    let running = support::Start::new("documented-bad-key")
        .run(|config| {
            config.crm.kustomer_api_key = adapter_gateway::config::Secret::new("not-the-orgs-key");
        })
        .await;
    let (status, body) = call(
        Client::new()
            .post(format!("{}/api/v1/sessions", running.gateway_url()))
            .json(&json!({"email": ADMIN, "kustomer_user": {"id": "kus-1", "email": ADMIN}})),
    )
    .await;
    assert_eq!(
        (status, code(&body)),
        (StatusCode::BAD_GATEWAY, "kustomer_unavailable"),
        "{body}"
    );
    assert!(
        body["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("Kustomer cannot be reached to confirm your Kustomer user")),
        "the agent is told why: {body}"
    );
}

#[tokio::test]
async fn a_failing_platform_is_502_ccai_unavailable_for_a_status_change_and_a_call() {
    let running = started("ccai-down", false, false).await;
    let gateway = running.gateway_url();
    let token = sign_in(&gateway, ADMIN).await;
    ok(
        "the CCAI fault",
        Client::new()
            .post(format!("{}/_sim/faults", running.simulator_url()))
            .json(&json!({"status": 500, "count": 100, "drop": 0, "latency_ms": 0})),
    )
    .await;
    let (status, body) = call(request(
        Method::PUT,
        format!("{gateway}/api/v1/status"),
        &token,
        Some(json!({"status_id": -2})),
    ))
    .await;
    assert_eq!(
        (status, code(&body)),
        (StatusCode::BAD_GATEWAY, "ccai_unavailable"),
        "PUT /status: {body}"
    );
    let (status, body) = call(request(
        Method::POST,
        format!("{gateway}/api/v1/calls"),
        &token,
        Some(json!({"number": "+14155552671"})),
    ))
    .await;
    assert_eq!(
        (status, code(&body)),
        (StatusCode::BAD_GATEWAY, "ccai_unavailable"),
        "POST /calls: {body}"
    );
}

#[tokio::test]
async fn the_settings_audit_answers_at_most_limit_entries_newest_first_and_200_statuses_at_most() {
    let running = started("audit", false, false).await;
    let gateway = running.gateway_url();
    let token = sign_in(&gateway, ADMIN).await;
    let url = format!("{gateway}/api/v1/status-inheritance");
    for rule in ["latest_wins", "kustomer_overrides_next", "latest_wins"] {
        ok(
            &format!("saving with {rule}"),
            request(
                Method::PUT,
                url.clone(),
                &token,
                Some(
                    json!({"enabled": false, "rule": rule, "mapping": {}, "kustomer_statuses": []}),
                ),
            ),
        )
        .await;
    }
    let audit = |limit: &str| {
        ok(
            "the audit",
            request(
                Method::GET,
                format!("{url}/audit?limit={limit}"),
                &token,
                None,
            ),
        )
    };
    let two = audit("2").await;
    let rules: Vec<&Value> = two["entries"]
        .as_array()
        .expect("entries")
        .iter()
        .map(|e| &e["new"]["rule"])
        .collect();
    assert_eq!(
        rules,
        [&json!("latest_wins"), &json!("kustomer_overrides_next")],
        "newest first: {two}"
    );
    // 0 is taken as 1.
    assert_eq!(
        audit("0").await["entries"].as_array().map(Vec::len),
        Some(1)
    );
    let statuses: Vec<Value> = (0..201)
        .map(|i| json!({"id": format!("rs-{i}"), "name": format!("Status {i}")}))
        .collect();
    let (status, body) = call(request(
        Method::PUT,
        url.clone(),
        &token,
        Some(json!({"enabled": false, "rule": "latest_wins", "mapping": {}, "kustomer_statuses": statuses})),
    ))
    .await;
    assert_eq!(
        (status, code(&body)),
        (StatusCode::BAD_REQUEST, "too_many_statuses"),
        "{body}"
    );
}

/// The simulator's CCAI state, `/_sim/state`'s `ccai`.
async fn ccai_state(simulator: &str) -> Value {
    ok(
        "the simulator's state",
        Client::new().get(format!("{simulator}/_sim/state")),
    )
    .await["ccai"]
        .clone()
}

/// Grace's status on the platform.
async fn platform_status(simulator: &str) -> i64 {
    ccai_state(simulator).await["agents"]
        .as_array()
        .and_then(|agents| agents.iter().find(|a| a["id"] == GRACE))
        .and_then(|a| a["status_id"].as_i64())
        .expect("Grace in the simulator's agents")
}

/// Status inheritance on, Kustomer's Lunch mapped to the CCAI status `lunch_to`.
async fn inheritance_on(gateway: &str, token: &str, lunch_to: i64, bidirectional: bool) {
    ok(
        "saving the status inheritance settings",
        request(
            Method::PUT,
            format!("{gateway}/api/v1/status-inheritance"),
            token,
            Some(json!({
                "enabled": true, "rule": "latest_wins", "bidirectional": bidirectional,
                "mapping": {"rs-lunch": lunch_to},
                "kustomer_statuses": [{"id": "rs-lunch", "name": "Lunch"}],
            })),
        ),
    )
    .await;
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

#[tokio::test]
async fn a_kustomer_status_mapped_to_a_ccai_status_the_platform_removed_is_409_mapping_stale() {
    let running = started("mapping-stale", false, false).await;
    let (gateway, simulator) = (running.gateway_url(), running.simulator_url());
    let token = sign_in(&gateway, ADMIN).await;
    // Lunch → Email only (2), a status of the tenant when the mapping is saved (and the gateway
    // has the statuses in its cache since).
    inheritance_on(&gateway, &token, 2, false).await;
    let (status, _) = call(Client::new().delete(format!("{simulator}/_sim/ccai/statuses/2"))).await;
    assert_eq!(status, StatusCode::NO_CONTENT, "the status is removed");
    let (status, body) = call(request(
        Method::POST,
        format!("{gateway}/api/v1/kustomer-status"),
        &token,
        Some(json!({"status_id": "rs-lunch"})),
    ))
    .await;
    assert_eq!(
        (status, code(&body)),
        (StatusCode::CONFLICT, "mapping_stale"),
        "{body}"
    );
    assert_eq!(
        platform_status(&simulator).await,
        0,
        "Grace stays Available on the platform"
    );
}

#[tokio::test]
async fn a_kustomer_change_time_is_clamped_to_5_minutes_before_and_5_seconds_after_the_gateways_clock(
) {
    let running = started("at-ms", false, false).await;
    let gateway = running.gateway_url();
    let token = sign_in(&gateway, ADMIN).await;
    inheritance_on(&gateway, &token, -4, false).await;
    let kustomer = |status_id: &'static str, at_ms: i64| {
        call(request(
            Method::POST,
            format!("{gateway}/api/v1/kustomer-status"),
            &token,
            Some(json!({"status_id": status_id, "at_ms": at_ms})),
        ))
    };
    let own = |status_id: i64, at_ms: i64| {
        call(request(
            Method::PUT,
            format!("{gateway}/api/v1/status"),
            &token,
            Some(json!({"status_id": status_id, "at_ms": at_ms})),
        ))
    };

    // Stamped an hour ahead: counted as 5 s ahead, so the agent's own pick stamped a minute
    // ahead (counted as 5 s ahead too, a moment later) is the latest, not superseded.
    let (status, body) = kustomer("rs-lunch", now_ms() + 3_600_000).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        body["decision"],
        json!({"action": "set_now", "value": -4}),
        "{body}"
    );
    let (status, body) = own(-2, now_ms() + 60_000).await;
    assert_eq!(
        status,
        StatusCode::OK,
        "the agent's pick after a future-stamped Kustomer change applies: {body}"
    );
    assert_eq!(body["current"]["id"], -2, "{body}");

    // Stamped 10 minutes ago: the agent's pick counts as 5 minutes ago; a Kustomer change stamped
    // in 1970, arriving after it, counts as 5 minutes ago too, a moment later: it is the latest.
    let (status, body) = own(-3, now_ms() - 600_000).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, body) = kustomer("rs-lunch", 2).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        body["decision"],
        json!({"action": "set_now", "value": -4}),
        "a change stamped long ago is not older than everything: {body}"
    );
}

/// Grace's Kustomer work session (kus-user-2), as the simulated org has it.
async fn graces_work_session(simulator: &str) -> Value {
    let state = ok(
        "the simulator's state",
        Client::new().get(format!("{simulator}/_sim/state")),
    )
    .await;
    state["kustomer"]["work_sessions"]
        .as_array()
        .and_then(|sessions| {
            sessions
                .iter()
                .rev()
                .find(|s| s["user"] == "kus-user-2" && s["active"] == true)
        })
        .cloned()
        .unwrap_or_else(|| panic!("Grace's active work session in {}", state["kustomer"]))
}

/// The writes to Kustomer's work sessions, in order.
async fn work_session_writes(simulator: &str) -> Vec<Value> {
    let writes = ok(
        "Kustomer's write log",
        Client::new().get(format!("{simulator}/_sim/kustomer/writes")),
    )
    .await;
    writes
        .as_array()
        .expect("a list of writes")
        .iter()
        .filter(|w| {
            w["path"]
                .as_str()
                .is_some_and(|p| p.starts_with("/v1/routing/work-sessions/"))
        })
        .cloned()
        .collect()
}

#[tokio::test]
async fn with_bidirectional_inheritance_the_status_the_platform_applies_when_wrap_up_ends_is_written_to_kustomer(
) {
    let running = started("write-back-after-wrap-up", true, true).await;
    let (gateway, simulator) = (running.gateway_url(), running.simulator_url());
    let token = sign_in(&gateway, ADMIN).await;
    // Kustomer's Lunch ↔ CCAI's Meal (-4), both ways.
    inheritance_on(&gateway, &token, -4, true).await;
    let session = ok(
        "the inbound call scenario",
        Client::new()
            .post(format!("{simulator}/_sim/scenarios"))
            .json(&json!({"kind": "inbound_call", "agent_id": GRACE, "number": "+14155550133"})),
    )
    .await;
    let id = session["id"].as_i64().expect("a session id");
    ok(
        "the answer",
        Client::new().post(format!("{simulator}/_sim/calls/{id}/answer")),
    )
    .await;
    // The gateway knows she is in the call (In-call, from the call's events).
    let mut socket = open_stream(&gateway, &token).await;
    let mut seen = snapshot(&mut socket).await["state"]["status"]["id"].clone();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while seen != -7 {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        match stream_next(&mut socket, left).await {
            StreamNext::Message(m) if m["event"]["kind"] == "status_changed" => {
                seen = m["event"]["status"]["id"].clone();
            }
            StreamNext::Message(_) => {}
            StreamNext::Closed(frame) => panic!("the stream closed: {frame:?}"),
        }
    }
    // Meal, picked during the call, waits as the next status: nothing is written yet.
    let (status, body) = call(request(
        Method::PUT,
        format!("{gateway}/api/v1/status"),
        &token,
        Some(json!({"status_id": -4})),
    ))
    .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    assert_eq!(body["next"]["id"], -4, "{body}");
    ok(
        "the customer hangs up",
        Client::new().post(format!("{simulator}/_sim/calls/{id}/customer_hang_up")),
    )
    .await;
    assert_eq!(
        work_session_writes(&simulator).await,
        Vec::<Value>::new(),
        "nothing written to Kustomer during the call and wrap-up"
    );
    assert_eq!(
        graces_work_session(&simulator).await["status"],
        "rs-available"
    );
    ok(
        "wrap-up ends",
        Client::new().post(format!("{simulator}/_sim/calls/{id}/wrap_up_done")),
    )
    .await;
    // The platform applied Meal; the gateway reads it and writes Lunch to her work session, once.
    let status = eventually(
        "Grace's Kustomer work session follows the status applied after wrap-up",
        Duration::from_secs(30),
        || async {
            let session = graces_work_session(&simulator).await;
            if session["status"] == "rs-lunch" {
                Ok(session["status"].clone())
            } else {
                Err(session.to_string())
            }
        },
    )
    .await;
    assert_eq!(status, "rs-lunch");
    assert_eq!(
        platform_status(&simulator).await,
        -4,
        "Meal on the platform"
    );
    let writes = work_session_writes(&simulator).await;
    let bodies: Vec<&Value> = writes.iter().map(|w| &w["body"]).collect();
    assert_eq!(
        bodies,
        [&json!({"status": "rs-lunch"})],
        "one write: {writes:?}"
    );
}

#[tokio::test]
async fn a_store_that_cannot_be_written_is_503_store_unavailable_and_the_gateway_recovers() {
    let running = started("store-unavailable", false, false).await;
    if adapter_gateway::store::DatabaseUrl::for_tests(&running.data_dir).engine()
        != adapter_gateway::store::Engine::Sqlite
    {
        eprintln!("skipped on PostgreSQL: the lock held here is SQLite's write lock");
        return;
    }
    let gateway = running.gateway_url();
    // Another process holds the store's write lock (as a stuck backup or a second gateway would).
    let options = sqlx::sqlite::SqliteConnectOptions::new()
        .filename(running.data_dir.join("gateway.sqlite3"))
        .busy_timeout(Duration::from_secs(5));
    let mut holder = <sqlx::SqliteConnection as sqlx::Connection>::connect_with(&options)
        .await
        .expect("the store opens");
    sqlx::query("BEGIN IMMEDIATE")
        .execute(&mut holder)
        .await
        .expect("the write lock");
    let sign_in_request = || {
        Client::new()
            .post(format!("{gateway}/api/v1/sessions"))
            .json(&json!({"email": ADMIN, "kustomer_user": {"id": "kus-1", "email": ADMIN}}))
    };
    let (status, body) = call(sign_in_request()).await;
    assert_eq!(
        (status, code(&body)),
        (StatusCode::SERVICE_UNAVAILABLE, "store_unavailable"),
        "{body}"
    );
    assert!(
        body["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("cannot reach its database")),
        "said plainly: {body}"
    );
    sqlx::query("ROLLBACK")
        .execute(&mut holder)
        .await
        .expect("the lock released");
    let (status, body) = call(sign_in_request()).await;
    assert_eq!(
        status,
        StatusCode::CREATED,
        "once the store can be written: {body}"
    );
}

/// `GET /api/v1/me`'s `capabilities`.
async fn capabilities(gateway: &str, token: &str) -> Vec<String> {
    let me = ok(
        "GET /me",
        request(Method::GET, format!("{gateway}/api/v1/me"), token, None),
    )
    .await;
    serde_json::from_value(me["capabilities"].clone()).expect("a list of controls")
}

#[tokio::test]
async fn the_call_controls_offered_are_asked_again_every_capabilities_refresh_interval() {
    let running = support::Start::new("documented-capabilities")
        .run(|config| {
            config.status_refresh_seconds = 0;
            config.capabilities_refresh_seconds = 1;
        })
        .await;
    let (gateway, simulator) = (running.gateway_url(), running.simulator_url());
    let token = sign_in(&gateway, ADMIN).await;
    let offered = capabilities(&gateway, &token).await;
    assert!(
        offered.contains(&"hold".to_owned()),
        "the simulator's controls at start: {offered:?}"
    );
    // The upstream fails: the next ask finds nothing offered.
    ok(
        "the CCAI fault",
        Client::new()
            .post(format!("{simulator}/_sim/faults"))
            .json(&json!({"status": 500, "count": 100_000, "drop": 0, "latency_ms": 0})),
    )
    .await;
    eventually(
        "no controls once the upstream fails",
        Duration::from_secs(30),
        || async {
            let now = capabilities(&gateway, &token).await;
            if now.is_empty() {
                Ok(())
            } else {
                Err(format!("{now:?}"))
            }
        },
    )
    .await;
    // It recovers: the next ask finds them again.
    ok(
        "the simulator's reset",
        Client::new().post(format!("{simulator}/_sim/reset")),
    )
    .await;
    let again = eventually(
        "the controls offered again once the upstream answers",
        Duration::from_secs(30),
        || async {
            let now = capabilities(&gateway, &token).await;
            if now.is_empty() {
                Err("none".to_owned())
            } else {
                Ok(now)
            }
        },
    )
    .await;
    assert_eq!(again, offered);
}

/// The simulated org's figures: `/_sim/state`'s `kustomer`.
async fn kustomer_state(simulator: &str) -> Value {
    ok(
        "the simulator's state",
        Client::new().get(format!("{simulator}/_sim/state")),
    )
    .await["kustomer"]
        .clone()
}

/// The Kustomer requests the simulator recorded (method and path).
async fn kustomer_requests(simulator: &str) -> Vec<String> {
    let state = ok(
        "the simulator's state",
        Client::new().get(format!("{simulator}/_sim/state")),
    )
    .await;
    state["requests"]
        .as_array()
        .expect("requests")
        .iter()
        .filter(|r| r["path"].as_str().is_some_and(|p| p.starts_with("/v1/")))
        .map(|r| {
            format!(
                "{} {}",
                r["method"].as_str().unwrap_or("-"),
                r["path"].as_str().unwrap_or("-")
            )
        })
        .collect()
}

#[tokio::test]
async fn the_kustomer_client_waits_for_the_reset_when_kustomer_says_no_request_is_left() {
    let running = started("kustomer-remaining-0", false, false).await;
    let (gateway, simulator) = (running.gateway_url(), running.simulator_url());
    let token = sign_in(&gateway, ADMIN).await;
    // One request per second: every answer says none is left until the next second.
    ok(
        "the org's limits",
        Client::new()
            .post(format!("{simulator}/_sim/kustomer/limits"))
            .json(&json!({"per_window": 1, "window_ms": 1000})),
    )
    .await;
    let before = kustomer_requests(&simulator).await.len();
    let (status, body) = call(request(
        Method::POST,
        format!("{gateway}/api/v1/crm/custom-fields"),
        &token,
        None,
    ))
    .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let sent = kustomer_requests(&simulator).await.split_off(before);
    assert!(
        sent.len() >= 2,
        "provisioning takes several requests, here {sent:?}"
    );
    // Each waited for its own window: Kustomer never had to refuse one.
    assert_eq!(
        kustomer_state(&simulator).await["rate_limited"],
        0,
        "no request sent over the limit: {sent:?}"
    );
}

#[tokio::test]
async fn the_kustomer_client_gives_a_request_up_after_30_answers_of_429() {
    let running = started("kustomer-429-cap", false, false).await;
    let (gateway, simulator) = (running.gateway_url(), running.simulator_url());
    let token = sign_in(&gateway, ADMIN).await;
    // Windows of a second, so that each 429 is waited through in about a second; Kustomer
    // refuses the next 32 writes of the customer fields.
    ok(
        "the org's limits",
        Client::new()
            .post(format!("{simulator}/_sim/kustomer/limits"))
            .json(&json!({"per_window": 1000, "window_ms": 1000})),
    )
    .await;
    ok(
        "the Kustomer fault",
        Client::new()
            .post(format!("{simulator}/_sim/kustomer/faults"))
            .json(&json!({"rate_limited": 32, "method": "PUT", "path_ends_with": "/v1/metadata/customer"})),
    )
    .await;
    let provision = || {
        call(request(
            Method::POST,
            format!("{gateway}/api/v1/crm/custom-fields"),
            &token,
            None,
        ))
    };
    let (status, body) = provision().await;
    assert_eq!(
        (status, code(&body)),
        (StatusCode::BAD_GATEWAY, "kustomer_unavailable"),
        "given up after 30 refusals: {body}"
    );
    assert_eq!(
        kustomer_state(&simulator).await["rate_limited"],
        30,
        "the same request, sent 30 times"
    );
    // The next try waits through the last 2 and goes through.
    let (status, body) = provision().await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(kustomer_state(&simulator).await["rate_limited"], 32);
}
