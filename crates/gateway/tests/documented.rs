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
    let session = ok(
        "the inbound call scenario",
        Client::new()
            .post(format!("{simulator}/_sim/scenarios"))
            .json(&json!({"kind": "inbound_call", "agent_id": GRACE, "number": number})),
    )
    .await;
    let id = session["id"].as_i64().expect("a session id");
    for event in ["answer", "customer_hang_up", "wrap_up_done"] {
        ok(
            &format!("{event} of call {id}"),
            Client::new().post(format!("{simulator}/_sim/calls/{id}/{event}")),
        )
        .await;
    }
    id
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
