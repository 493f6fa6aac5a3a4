//! The agent API over HTTP: sign-in rules, sessions, and errors with stable codes. The gateway
//! talks to the simulator's CCAI side on loopback.

use std::path::PathBuf;

use adapter_gateway::config::Config;
use reqwest::{Client, StatusCode};
use serde_json::{json, Value};

mod support;

use support::{call, code};

struct Stack {
    gateway: String,
    simulator: String,
    _running: support::Running,
}

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("adapter-agent-api-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

async fn stack(name: &str, configure: impl FnOnce(&mut Config)) -> Stack {
    let running = support::Start::new(&format!("agent-api-{name}"))
        .run(configure)
        .await;
    Stack {
        gateway: format!("http://{}/api/v1", running.gateway),
        simulator: format!("http://{}", running.simulator),
        _running: running,
    }
}

/// The widget's sign-in: the Kustomer user's id it sends (`kus-1`, no user of the simulated org)
/// is ignored by the gateway, which asks Kustomer.
fn sign_in_body(email: &str, kustomer_email: &str, password: Option<&str>) -> Value {
    json!({"email": email, "password": password, "kustomer_user": {"id": "kus-1", "email": kustomer_email}})
}

/// `POST /sessions` as `email`, the host saying the Kustomer user is `kustomer_email`.
async fn sign_in(
    stack: &Stack,
    email: &str,
    kustomer_email: &str,
    password: Option<&str>,
) -> (StatusCode, Value) {
    call(
        Client::new()
            .post(format!("{}/sessions", stack.gateway))
            .json(&sign_in_body(email, kustomer_email, password)),
    )
    .await
}

/// What the simulator recorded.
async fn sim_state(stack: &Stack) -> Value {
    reqwest::get(format!("{}/_sim/state", stack.simulator))
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

#[tokio::test]
async fn sign_in_me_refresh_and_sign_out() {
    let stack = stack("lifecycle", |_| {}).await;
    let http = Client::new();
    let (status, body) = sign_in(
        &stack,
        "Ada.Lovelace@example.com",
        "ada.lovelace@example.com",
        None,
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["agent_email"], "ada.lovelace@example.com");
    assert_eq!(body["ccai_agent_id"], 101);
    let token = body["token"].as_str().unwrap().to_owned();

    let (status, me) = call(
        http.get(format!("{}/me", stack.gateway))
            .bearer_auth(&token),
    )
    .await;
    assert_eq!(
        (status, &me["kustomer_user_id"]),
        (StatusCode::OK, &json!("kus-user-1")),
        "Kustomer's user with Ada's email, not the id the widget sent"
    );

    let (status, refreshed) = call(
        http.post(format!("{}/sessions/refresh", stack.gateway))
            .bearer_auth(&token),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let new_token = refreshed["token"].as_str().unwrap().to_owned();
    assert_ne!(new_token, token);
    let (status, body) = call(
        http.get(format!("{}/me", stack.gateway))
            .bearer_auth(&token),
    )
    .await;
    assert_eq!(
        (status, code(&body)),
        (StatusCode::UNAUTHORIZED, "session_expired"),
        "the old token stops working"
    );

    let (status, _) = call(
        http.delete(format!("{}/sessions", stack.gateway))
            .bearer_auth(&new_token),
    )
    .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, body) = call(
        http.get(format!("{}/me", stack.gateway))
            .bearer_auth(&new_token),
    )
    .await;
    assert_eq!(
        (status, code(&body)),
        (StatusCode::UNAUTHORIZED, "session_expired")
    );
    let (status, body) = call(http.get(format!("{}/me", stack.gateway))).await;
    assert_eq!(
        (status, code(&body)),
        (StatusCode::UNAUTHORIZED, "unauthenticated")
    );
}

#[tokio::test]
async fn the_agent_email_must_be_the_kustomer_users() {
    let stack = stack("mismatch", |_| {}).await;
    let (status, body) = sign_in(
        &stack,
        "grace.hopper@example.com",
        "ada.lovelace@example.com",
        None,
    )
    .await;
    assert_eq!(
        (status, code(&body)),
        (StatusCode::FORBIDDEN, "email_mismatch")
    );
    let message = body["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("ada.lovelace@example.com")
            && message.contains("grace.hopper@example.com"),
        "{message}"
    );
}

#[tokio::test]
async fn sign_in_is_refused_with_a_clear_error_when_kustomer_cannot_be_reached() {
    let stack = stack("kustomer-down", |config| {
        config.crm.kustomer_url = "http://127.0.0.1:1".into();
    })
    .await;
    let email = "grace.hopper@example.com";
    let (status, body) = sign_in(&stack, email, email, None).await;
    assert_eq!(
        (status, code(&body)),
        (StatusCode::BAD_GATEWAY, "kustomer_unavailable"),
        "{body}"
    );
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("try again"),
        "{body}"
    );
}

#[tokio::test]
async fn an_email_the_tenant_does_not_know_is_refused() {
    let stack = stack("unknown", |_| {}).await;
    let (status, body) = sign_in(&stack, "nobody@example.com", "nobody@example.com", None).await;
    assert_eq!(
        (status, code(&body)),
        (StatusCode::FORBIDDEN, "unknown_agent")
    );
}

#[tokio::test]
async fn passwords_are_checked_against_the_agents_file() {
    use argon2::{password_hash::SaltString, Argon2, PasswordHasher};
    let salt = SaltString::from_b64("c2FsdHNhbHRzYWx0").unwrap();
    let hash = Argon2::default()
        .hash_password(b"correct horse battery staple", &salt)
        .unwrap()
        .to_string();
    let dir = temp_dir("agents-file");
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("agents.json");
    std::fs::write(
        &file,
        json!([{"email": "grace.hopper@example.com", "password_hash": hash}]).to_string(),
    )
    .unwrap();
    let stack = stack("passwords", |config| {
        config.dev_sign_in = false;
        config.agents_file = Some(file);
    })
    .await;
    let email = "grace.hopper@example.com";
    let (status, body) = sign_in(&stack, email, email, Some("wrong")).await;
    assert_eq!(
        (status, code(&body)),
        (StatusCode::UNAUTHORIZED, "bad_credentials")
    );
    let (status, body) = sign_in(&stack, email, email, None).await;
    assert_eq!(
        (status, code(&body)),
        (StatusCode::UNAUTHORIZED, "bad_credentials")
    );
    let (status, body) = sign_in(&stack, email, email, Some("correct horse battery staple")).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
}

#[tokio::test]
async fn bad_requests_get_stable_codes() {
    let stack = stack("bad-requests", |_| {}).await;
    let http = Client::new();
    let url = format!("{}/sessions", stack.gateway);
    let cases = [
        (
            http.post(&url)
                .header("content-type", "application/json")
                .body("{"),
            StatusCode::BAD_REQUEST,
            "malformed_json",
        ),
        (
            http.post(&url).json(&json!({"email": "a@b"})),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_fields",
        ),
        (
            http.post(&url).body("email=a@b"),
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "not_json",
        ),
        (
            http.post(&url)
                .header("content-type", "application/json")
                .body(format!("\"{}\"", "x".repeat(70_000))),
            StatusCode::PAYLOAD_TOO_LARGE,
            "body_too_large",
        ),
        (
            http.post(&url)
                .json(&sign_in_body("not-an-email", "not-an-email", None)),
            StatusCode::BAD_REQUEST,
            "invalid_email",
        ),
        (
            http.get(format!("{}/nowhere", stack.gateway)),
            StatusCode::NOT_FOUND,
            "not_found",
        ),
    ];
    for (request, want_status, want_code) in cases {
        let (status, body) = call(request).await;
        assert_eq!((status, code(&body)), (want_status, want_code), "{body}");
        assert!(body["error"]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty()));
    }
}

#[tokio::test]
async fn an_unreachable_tenant_is_a_clear_error_not_a_hang() {
    let stack = stack("ccai-down", |config| {
        config.ccai_url = "http://127.0.0.1:1".into()
    })
    .await;
    let (status, body) = sign_in(
        &stack,
        "ada.lovelace@example.com",
        "ada.lovelace@example.com",
        None,
    )
    .await;
    assert_eq!(
        (status, code(&body)),
        (StatusCode::BAD_GATEWAY, "ccai_unavailable")
    );
    assert!(body["error"]["message"]
        .as_str()
        .unwrap()
        .contains("cannot reach the CCAI Platform"));
}

/// Signs `email` in (development sign-in) and returns the bearer token.
async fn signed_in(stack: &Stack, email: &str) -> String {
    let (status, body) = sign_in(stack, email, email, None).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    body["token"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn statuses_are_listed_with_system_ones_not_selectable() {
    let stack = stack("statuses", |_| {}).await;
    let token = signed_in(&stack, "grace.hopper@example.com").await;
    let (status, body) = call(
        Client::new()
            .get(format!("{}/statuses", stack.gateway))
            .bearer_auth(&token),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let statuses = body["statuses"].as_array().unwrap();
    let selectable = |name: &str| {
        statuses
            .iter()
            .find(|s| s["name"] == name)
            .map(|s| s["selectable"].clone())
    };
    assert_eq!(selectable("Available"), Some(json!(true)));
    assert_eq!(selectable("Training"), Some(json!(true)));
    assert_eq!(selectable("In-call"), Some(json!(false)));
    assert_eq!(selectable("Wrap-up"), Some(json!(false)));
    let (status, body) = call(Client::new().get(format!("{}/statuses", stack.gateway))).await;
    assert_eq!(
        (status, code(&body)),
        (StatusCode::UNAUTHORIZED, "unauthenticated")
    );
}

#[tokio::test]
async fn click_to_call_places_the_call_for_the_signed_in_agent() {
    let stack = stack("calls", |_| {}).await;
    let token = signed_in(&stack, "grace.hopper@example.com").await;
    let http = Client::new();
    let (status, body) = call(
        http.post(format!("{}/calls", stack.gateway))
            .bearer_auth(&token)
            .json(
                &json!({"number": "+14155552671", "conversation_id": "conv-grace-1", "lang": "en"}),
            ),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["needs_agent"], false);
    let state = sim_state(&stack).await;
    let recorded = &state["ccai"]["calls"][0];
    assert_eq!(
        recorded["agent_email"], "grace.hopper@example.com",
        "the session's agent, never one from the body"
    );
    assert_eq!(recorded["end_user_number"], "+14155552671");
    assert_eq!(recorded["ticket_id"], "conv-grace-1");

    // Several outbound numbers: created, and the agent finishes it.
    http.post(format!("{}/_sim/ccai/outbound_numbers", stack.simulator))
        .json(&["+14155550100", "+14155550101"])
        .send()
        .await
        .unwrap();
    let (status, body) = call(
        http.post(format!("{}/calls", stack.gateway))
            .bearer_auth(&token)
            .json(&json!({"number": "+14155552671"})),
    )
    .await;
    assert_eq!(
        (status, &body["needs_agent"]),
        (StatusCode::ACCEPTED, &json!(true)),
        "{body}"
    );
}

#[tokio::test]
async fn refused_calls_say_what_to_do() {
    let stack = stack("refused-calls", |_| {}).await;
    let http = Client::new();
    // Ada is Offline in the simulated tenant.
    let token = signed_in(&stack, "ada.lovelace@example.com").await;
    let (status, body) = call(
        http.post(format!("{}/calls", stack.gateway))
            .bearer_auth(&token)
            .json(&json!({"number": "+14155552671"})),
    )
    .await;
    assert_eq!(
        (status, code(&body)),
        (StatusCode::CONFLICT, "agent_not_available")
    );
    assert!(body["error"]["message"]
        .as_str()
        .unwrap()
        .contains("set your status to Available"));
    let (status, body) = call(
        http.post(format!("{}/calls", stack.gateway))
            .bearer_auth(&token)
            .json(&json!({"number": "415 555 2671"})),
    )
    .await;
    assert_eq!(
        (status, code(&body)),
        (StatusCode::BAD_REQUEST, "invalid_number")
    );
    let (status, body) = call(
        http.post(format!("{}/calls", stack.gateway))
            .json(&json!({"number": "+14155552671"})),
    )
    .await;
    assert_eq!(
        (status, code(&body)),
        (StatusCode::UNAUTHORIZED, "unauthenticated")
    );
    let state = sim_state(&stack).await;
    assert_eq!(
        state["ccai"]["calls"].as_array().unwrap().len(),
        0,
        "no call was placed"
    );
}

async fn put_status(stack: &Stack, token: &str, status_id: i64) -> (StatusCode, Value) {
    call(
        Client::new()
            .put(format!("{}/status", stack.gateway))
            .bearer_auth(token)
            .json(&json!({ "status_id": status_id })),
    )
    .await
}

async fn sim_agent(stack: &Stack, id: i64) -> Value {
    let state = sim_state(stack).await;
    state["ccai"]["agents"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["id"] == id)
        .cloned()
        .unwrap()
}

#[tokio::test]
async fn the_agent_sets_a_status_now_or_as_the_next_one_during_a_call() {
    let stack = stack("set-status", |_| {}).await;
    let token = signed_in(&stack, "grace.hopper@example.com").await;

    let (status, body) = put_status(&stack, &token, -2).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["current"]["name"], "Break");
    assert_eq!(body["next"], Value::Null);
    assert_eq!(
        sim_agent(&stack, 102).await["status_id"],
        -2,
        "the simulator received it"
    );

    // The platform puts Grace in a call; her change becomes the next status.
    support::ok(
        "Grace in a call on the platform",
        Client::new()
            .post(format!("{}/_sim/ccai/agents/102/status", stack.simulator))
            .json(&json!({"status_id": -7})),
    )
    .await;
    let (status, body) = put_status(&stack, &token, 1).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    assert_eq!(body["current"]["name"], "In-call");
    assert_eq!(body["next"]["name"], "Training");
    assert_eq!(
        body["message"],
        "You are In-call: Training will apply after the call and wrap-up."
    );
    // What the gateway asked of the platform: Training as Grace's next status, her status kept.
    // (The platform applying it after wrap-up is the platform's part; the adapter showing it is
    // e2e/tests/call.spec.mjs.)
    let grace = sim_agent(&stack, 102).await;
    assert_eq!(
        (&grace["status_id"], &grace["next_status_id"]),
        (&json!(-7), &json!(1))
    );
    let requests = sim_state(&stack).await["ccai"]["status_requests"].clone();
    assert_eq!(
        requests,
        json!([{"status": "Break", "agent_ids": [102]}, {"status": "Training", "agent_ids": [102]}]),
        "one request per change"
    );
}

#[tokio::test]
async fn a_pending_next_status_can_be_cancelled_during_a_call_only() {
    let stack = stack("cancel-next", |_| {}).await;
    let token = signed_in(&stack, "grace.hopper@example.com").await;
    let cancel = || {
        call(
            Client::new()
                .delete(format!("{}/status/next", stack.gateway))
                .bearer_auth(&token),
        )
    };
    let (status, body) = cancel().await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert_eq!(body["error"]["code"], "no_next_status");

    support::ok(
        "Grace in a call on the platform",
        Client::new()
            .post(format!("{}/_sim/ccai/agents/102/status", stack.simulator))
            .json(&json!({"status_id": -7})),
    )
    .await;
    let (status, _) = put_status(&stack, &token, -2).await;
    assert_eq!(status, StatusCode::ACCEPTED);
    let (status, body) = cancel().await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["current"]["name"], "In-call");
    assert_eq!(body["next"], Value::Null);
    let grace = sim_agent(&stack, 102).await;
    assert_eq!(
        (&grace["status_id"], &grace["next_status_id"]),
        (&json!(-7), &json!(0)),
        "upstream, Available after the call (the platform's default) replaces Break"
    );
}

#[tokio::test]
async fn system_and_unknown_statuses_are_refused_before_the_platform_is_asked() {
    let stack = stack("refused-status", |_| {}).await;
    let token = signed_in(&stack, "grace.hopper@example.com").await;
    let (status, body) = put_status(&stack, &token, -7).await;
    assert_eq!(
        (status, code(&body)),
        (StatusCode::UNPROCESSABLE_ENTITY, "status_not_selectable")
    );
    assert_eq!(
        body["error"]["message"],
        "In-call is set by the contact center itself and cannot be chosen."
    );
    let (status, body) = put_status(&stack, &token, 4242).await;
    assert_eq!(
        (status, code(&body)),
        (StatusCode::UNPROCESSABLE_ENTITY, "unknown_status")
    );
    let state = sim_state(&stack).await;
    assert_eq!(
        state["ccai"]["status_requests"].as_array().unwrap().len(),
        0
    );
}

mod event_stream {
    use super::*;
    use adapter_core::agent_events::StreamAuth;
    use futures_util::StreamExt;
    use tokio_tungstenite::tungstenite::Message;

    type Socket = tokio_tungstenite::WebSocketStream<
        tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>,
    >;

    /// The stream of `token`'s agent, resuming after `resume`, as `browser`.
    async fn open(
        stack: &Stack,
        token: &str,
        resume: Option<(u64, u64)>,
        browser: Option<&str>,
    ) -> Socket {
        let base = stack.gateway.trim_end_matches("/api/v1");
        let auth = StreamAuth::new(token.to_owned(), resume, browser.map(str::to_owned));
        support::open_stream_with(base, &auth).await
    }

    /// The next stream message (heartbeats are 15 s apart, so none come during a test).
    async fn next(socket: &mut Socket) -> Value {
        loop {
            let message = tokio::time::timeout(std::time::Duration::from_secs(5), socket.next())
                .await
                .expect("a message within 5 s")
                .expect("the stream is open")
                .expect("a valid frame");
            if let Message::Text(text) = message {
                return serde_json::from_str(&text).unwrap();
            }
        }
    }

    #[tokio::test]
    async fn a_second_browser_of_the_same_agent_is_told_to_both_and_tabs_are_not_browsers() {
        let stack = stack("presence", |_| {}).await;
        let first = signed_in(&stack, "grace.hopper@example.com").await;
        let second = signed_in(&stack, "grace.hopper@example.com").await;
        let mut tab_a = open(&stack, &first, None, Some("browser-a")).await;
        assert_eq!(next(&mut tab_a).await["type"], "snapshot");
        // A second tab of the same browser: still one browser, nothing said.
        let mut tab_b = open(&stack, &first, None, Some("browser-a")).await;
        assert_eq!(next(&mut tab_b).await["type"], "snapshot");
        // Another browser: both hear there are two.
        let mut other = open(&stack, &second, None, Some("browser-b")).await;
        assert_eq!(next(&mut other).await["type"], "snapshot");
        assert_eq!(
            next(&mut other).await,
            json!({"type": "presence", "browsers": 2})
        );
        assert_eq!(
            next(&mut tab_a).await,
            json!({"type": "presence", "browsers": 2})
        );
        assert_eq!(
            next(&mut tab_b).await,
            json!({"type": "presence", "browsers": 2})
        );
        // The other browser closes: back to one.
        drop(other);
        assert_eq!(
            next(&mut tab_a).await,
            json!({"type": "presence", "browsers": 1})
        );
        // A hostile browser id counts as the session's own browser, not as a name.
        let mut odd = open(&stack, &second, None, Some("<script>")).await;
        assert_eq!(next(&mut odd).await["type"], "snapshot");
        assert_eq!(
            next(&mut odd).await,
            json!({"type": "presence", "browsers": 2})
        );
    }

    /// Waits for the stream to show `status` and `next`; answers the messages seen.
    async fn until_status(socket: &mut Socket, status: &str, next_status: Value) -> Vec<Value> {
        let mut seen = Vec::new();
        loop {
            let message = next(socket).await;
            let state = match message["type"].as_str() {
                Some("snapshot") => message["state"].clone(),
                _ if message["event"]["kind"] == "status_changed" => message["event"].clone(),
                _ => continue,
            };
            seen.push(state.clone());
            if state["status"]["name"] == status && state["next_status"] == next_status {
                return seen;
            }
        }
    }

    #[tokio::test]
    async fn the_directory_corrects_what_the_stream_shows_and_drops_a_next_status_the_platform_applied(
    ) {
        // A status the gateway did not set (and a gateway that restarts reconciles the same way:
        // its first directory read is at startup).
        let stack = stack("directory", |config| config.status_refresh_seconds = 1).await;
        let token = signed_in(&stack, "grace.hopper@example.com").await;
        let mut socket = open(&stack, &token, None, None).await;
        until_status(&mut socket, "Available", Value::Null).await;
        let force = |status_id: i64| {
            Client::new()
                .post(format!("{}/_sim/ccai/agents/102/status", stack.simulator))
                .json(&json!({"status_id": status_id}))
        };
        let (status, _) = call(force(-7)).await;
        assert_eq!(status, StatusCode::OK);
        until_status(&mut socket, "In-call", Value::Null).await;
        let (status, body) = put_status(&stack, &token, -2).await;
        assert_eq!(status, StatusCode::ACCEPTED, "{body}");
        until_status(&mut socket, "In-call", json!({"id": -2, "name": "Break"})).await;
        // The call ends without the gateway hearing of it: the platform applies Break.
        let (status, _) = call(force(0)).await;
        assert_eq!(status, StatusCode::OK);
        until_status(&mut socket, "Break", Value::Null).await;
    }

    #[tokio::test]
    async fn events_are_numbered_and_a_reconnect_gets_exactly_what_it_missed() {
        let stack = stack("events", |_| {}).await;
        let token = signed_in(&stack, "grace.hopper@example.com").await;
        let mut socket = open(&stack, &token, None, None).await;
        let hello = next(&mut socket).await;
        assert_eq!(
            (&hello["type"], &hello["seq"]),
            (&json!("snapshot"), &json!(1))
        );
        assert_eq!(
            hello["state"]["status"],
            json!({"id": 0, "name": "Available"}),
            "sign-in read the agent's status from the platform"
        );
        let epoch = hello["epoch"].as_u64().unwrap();

        put_status(&stack, &token, -2).await;
        let event = next(&mut socket).await;
        assert_eq!(
            (&event["type"], &event["seq"]),
            (&json!("event"), &json!(2))
        );
        assert_eq!(event["event"]["kind"], "status_changed");
        assert_eq!(event["event"]["status"]["name"], "Break");
        drop(socket);

        // While disconnected: two more things happen.
        put_status(&stack, &token, 0).await;
        let placed = call(
            Client::new()
                .post(format!("{}/calls", stack.gateway))
                .bearer_auth(&token)
                .json(&json!({"number": "+14155552671"})),
        )
        .await;
        assert_eq!(placed.0, StatusCode::CREATED, "{}", placed.1);

        let mut socket = open(&stack, &token, Some((epoch, 2)), None).await;
        let missed = [next(&mut socket).await, next(&mut socket).await];
        assert_eq!(
            (&missed[0]["seq"], &missed[0]["event"]["status"]["name"]),
            (&json!(3), &json!("Available"))
        );
        assert_eq!(
            (&missed[1]["seq"], &missed[1]["event"]["kind"]),
            (&json!(4), &json!("call"))
        );
        assert_eq!(missed[1]["event"]["number"], "+14155552671");

        // Another epoch (the gateway restarted): the whole state instead.
        let mut socket = open(&stack, &token, Some((epoch + 1, 1)), None).await;
        let snapshot = next(&mut socket).await;
        assert_eq!(
            (&snapshot["type"], &snapshot["seq"]),
            (&json!("snapshot"), &json!(4))
        );
        assert_eq!(snapshot["state"]["status"]["name"], "Available");
        assert_eq!(snapshot["state"]["call"]["number"], "+14155552671");
        assert_eq!(snapshot["state"]["call"]["state"], "dialing");
    }

    #[tokio::test]
    async fn a_stream_needs_a_live_session() {
        let stack = stack("events-auth", |_| {}).await;
        let base = stack.gateway.trim_end_matches("/api/v1");
        let mut socket = support::open_stream(base, "nope").await;
        assert_eq!(
            support::stream_close(&mut socket, std::time::Duration::from_secs(5))
                .await
                .map(|(code, _)| code),
            Some(4001),
            "an unknown token closes the stream as an ended session"
        );
    }
}

mod inheritance {
    use super::*;

    const KUSTOMER: [(&str, &str); 3] = [
        ("st-available", "Available"),
        ("st-lunch", "Lunch"),
        ("st-email", "Email only"),
    ];

    fn settings(enabled: bool, rule: &str, mapping: Value) -> Value {
        json!({
            "enabled": enabled,
            "rule": rule,
            "bidirectional": false,
            "mapping": mapping,
            "kustomer_statuses": KUSTOMER.iter().map(|(id, name)| json!({"id": id, "name": name})).collect::<Vec<_>>(),
        })
    }

    async fn put_settings(stack: &Stack, token: &str, body: &Value) -> (StatusCode, Value) {
        call(
            Client::new()
                .put(format!("{}/status-inheritance", stack.gateway))
                .bearer_auth(token)
                .json(body),
        )
        .await
    }

    async fn kustomer_change(
        stack: &Stack,
        token: &str,
        status_id: &str,
        at_ms: i64,
    ) -> (StatusCode, Value) {
        call(
            Client::new()
                .post(format!("{}/kustomer-status", stack.gateway))
                .bearer_auth(token)
                .json(&json!({"status_id": status_id, "at_ms": at_ms})),
        )
        .await
    }

    async fn force(stack: &Stack, agent: i64, status_id: i64) {
        Client::new()
            .post(format!(
                "{}/_sim/ccai/agents/{agent}/status",
                stack.simulator
            ))
            .json(&json!({ "status_id": status_id }))
            .send()
            .await
            .unwrap();
    }

    fn now() -> i64 {
        adapter_gateway::clock::now_ms()
    }

    /// The routing status of the user's active work session in the simulated Kustomer.
    async fn kustomer_status(stack: &Stack, user: &str) -> String {
        let value: Value = Client::new()
            .get(format!(
                "{}/v1/routing/users/{user}/work-sessions",
                stack.simulator
            ))
            .bearer_auth("sim-kustomer-key")
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

    /// The paths of the work-session writes Kustomer received.
    async fn work_session_writes(stack: &Stack) -> Vec<String> {
        let writes: Value = reqwest::get(format!("{}/_sim/kustomer/writes", stack.simulator))
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        writes
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|w| w["path"].as_str())
            .filter(|p| p.starts_with("/v1/routing/work-sessions"))
            .map(str::to_owned)
            .collect()
    }

    #[tokio::test]
    async fn an_agent_who_sends_another_agents_kustomer_user_id_at_sign_in_cannot_move_that_agents_kustomer_status(
    ) {
        let stack = stack("inherit-impersonation", |config| {
            config.admin_emails = vec!["grace.hopper@example.com".into()];
        })
        .await;
        // Grace (kus-user-2) signs in saying she is Ada's Kustomer user, kus-user-1.
        let (status, body) = call(
            Client::new()
                .post(format!("{}/sessions", stack.gateway))
                .json(&json!({"email": "grace.hopper@example.com",
                    "kustomer_user": {"id": "kus-user-1", "email": "grace.hopper@example.com"}})),
        )
        .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        assert_eq!(
            body["kustomer_user_id"], "kus-user-2",
            "Kustomer's answer, not hers"
        );
        let token = body["token"].as_str().unwrap().to_owned();
        let settings = json!({
            "enabled": true, "rule": "latest_wins", "bidirectional": true,
            "mapping": {"rs-available": 0, "rs-lunch": -4, "rs-email": -1},
            "kustomer_statuses": [{"id": "rs-available", "name": "Available"},
                {"id": "rs-lunch", "name": "Lunch"}, {"id": "rs-email", "name": "Email only"}],
        });
        let (status, body) = put_settings(&stack, &token, &settings).await;
        assert_eq!(status, StatusCode::OK, "{body}");

        // Her CCAI status change is written back to her own Kustomer status only.
        let (status, body) = put_status(&stack, &token, -4).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(kustomer_status(&stack, "kus-user-2").await, "rs-lunch");
        assert_eq!(
            kustomer_status(&stack, "kus-user-1").await,
            "rs-available",
            "Ada's Kustomer status did not move"
        );
        assert_eq!(
            work_session_writes(&stack).await,
            ["/v1/routing/work-sessions/ws-kus-user-2"],
            "no write to Ada's work session"
        );
    }

    /// Grace administers; she turns inheritance on with Lunch → Meal, Email only → Unavailable.
    async fn configured(name: &str, rule: &str) -> (Stack, String) {
        let stack = stack(name, |config| {
            config.admin_emails = vec!["grace.hopper@example.com".into()];
        })
        .await;
        let token = signed_in(&stack, "grace.hopper@example.com").await;
        let body = settings(
            true,
            rule,
            json!({"st-lunch": -4, "st-email": -1, "st-available": 0}),
        );
        let (status, answer) = put_settings(&stack, &token, &body).await;
        assert_eq!(status, StatusCode::OK, "{answer}");
        (stack, token)
    }

    #[tokio::test]
    async fn only_admins_save_settings_every_problem_is_listed_and_every_save_is_audited() {
        let stack = stack("inherit-settings", |config| {
            config.admin_emails = vec!["Grace.Hopper@example.com".into()];
        })
        .await;
        let alan = signed_in(&stack, "alan.turing@example.com").await;
        let grace = signed_in(&stack, "grace.hopper@example.com").await;
        let good = settings(true, "latest_wins", json!({"st-lunch": -4}));
        let (status, body) = put_settings(&stack, &alan, &good).await;
        assert_eq!(
            (status, code(&body)),
            (StatusCode::FORBIDDEN, "admins_only")
        );

        let bad = settings(
            true,
            "latest_wins",
            json!({"st-lunch": -7, "st-gone": 0, "st-email": 99}),
        );
        let (status, body) = put_settings(&stack, &grace, &bad).await;
        assert_eq!(
            (status, code(&body)),
            (StatusCode::UNPROCESSABLE_ENTITY, "invalid_settings")
        );
        let problems = body["error"]["problems"].as_array().unwrap();
        assert_eq!(problems.len(), 3, "{body}");
        assert!(body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("In-call is set by the contact center itself"));

        let (status, body) = put_settings(&stack, &grace, &good).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let (status, body) = call(
            Client::new()
                .get(format!("{}/status-inheritance", stack.gateway))
                .bearer_auth(&alan),
        )
        .await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(body["settings"]["enabled"], true);
        assert_eq!(body["settings"]["mapping"]["st-lunch"], -4);
        assert_eq!(body["admin"], false);
        let (status, body) = call(
            Client::new()
                .get(format!("{}/status-inheritance/audit", stack.gateway))
                .bearer_auth(&grace),
        )
        .await;
        assert_eq!(status, StatusCode::OK);
        let entries = body["entries"].as_array().unwrap();
        assert_eq!(entries.len(), 1, "refused saves leave no trace");
        assert_eq!(entries[0]["actor"], "grace.hopper@example.com");
        assert_eq!(entries[0]["old"], Value::Null);
        assert_eq!(entries[0]["new"]["mapping"]["st-lunch"], -4);
    }

    #[tokio::test]
    async fn kustomer_changes_follow_the_policy_through_to_the_simulator() {
        let (stack, token) = configured("inherit-flow", "latest_wins").await;
        // Grace is Available: Lunch applies now as Meal.
        let (status, body) = kustomer_change(&stack, &token, "st-lunch", now()).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(body["decision"], json!({"action": "set_now", "value": -4}));
        assert_eq!(sim_agent(&stack, 102).await["status_id"], -4);
        // Unmapped: ignored, and said so.
        let (_, body) = kustomer_change(&stack, &token, "st-busy", now()).await;
        assert_eq!(
            body["decision"],
            json!({"action": "ignore", "value": "unmapped"})
        );
        // In a call: Email only becomes the next status (Unavailable), applied after wrap-up.
        force(&stack, 102, -7).await;
        put_status(&stack, &token, -2).await; // the gateway learns of the call
        let (_, body) = kustomer_change(&stack, &token, "st-email", now()).await;
        assert_eq!(
            body["decision"],
            json!({"action": "set_next", "value": -1}),
            "{body}"
        );
        assert_eq!(sim_agent(&stack, 102).await["next_status_id"], -1);
        for status_id in [-6, 0] {
            force(&stack, 102, status_id).await;
        }
        assert_eq!(sim_agent(&stack, 102).await["status_id"], -1);
    }

    #[tokio::test]
    async fn offline_agents_and_stale_changes_are_ignored() {
        let (stack, token) = configured("inherit-ignored", "latest_wins").await;
        // The agent picks Break now; a Kustomer change made a second earlier arrives after.
        let (status, _) = put_status(&stack, &token, -2).await;
        assert_eq!(status, StatusCode::OK);
        let (_, body) = kustomer_change(&stack, &token, "st-lunch", now() - 1_000).await;
        assert_eq!(
            body["decision"],
            json!({"action": "ignore", "value": "older_than_agents_change"})
        );
        assert_eq!(sim_agent(&stack, 102).await["status_id"], -2);
        // And the other way: a Kustomer change applied, then an adapter click made before it.
        let (_, body) = kustomer_change(&stack, &token, "st-lunch", now()).await;
        assert_eq!(body["decision"]["action"], "set_now");
        let (status, body) = call(
            Client::new()
                .put(format!("{}/status", stack.gateway))
                .bearer_auth(&token)
                .json(&json!({"status_id": 1, "at_ms": now() - 2_000})),
        )
        .await;
        assert_eq!((status, code(&body)), (StatusCode::CONFLICT, "superseded"));
        // Offline in CCAI: ignored.
        let (status, _) = put_status(&stack, &token, -10).await;
        assert_eq!(status, StatusCode::OK);
        let (_, body) = kustomer_change(&stack, &token, "st-available", now()).await;
        assert_eq!(
            body["decision"],
            json!({"action": "ignore", "value": "offline"})
        );
        assert_eq!(sim_agent(&stack, 102).await["status_id"], -10);
    }

    #[tokio::test]
    async fn bidirectional_100_alternating_changes_from_both_sides_and_no_echo() {
        let stack = stack("inherit-bidirectional", |config| {
            config.admin_emails = vec!["grace.hopper@example.com".into()];
        })
        .await;
        // Grace is Kustomer user kus-user-2 in the simulator (work session ws-kus-user-2).
        let (status, body) = call(
            Client::new()
                .post(format!("{}/sessions", stack.gateway))
                .json(&json!({"email": "grace.hopper@example.com",
                    "kustomer_user": {"id": "kus-user-2", "email": "grace.hopper@example.com"}})),
        )
        .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        let token = body["token"].as_str().unwrap().to_owned();
        let settings = json!({
            "enabled": true, "rule": "latest_wins", "bidirectional": true,
            "mapping": {"rs-available": 0, "rs-lunch": -4, "rs-email": -1},
            "kustomer_statuses": [{"id": "rs-available", "name": "Available"},
                {"id": "rs-lunch", "name": "Lunch"}, {"id": "rs-email", "name": "Email only"},
                {"id": "rs-busy", "name": "Busy"}],
        });
        let (status, body) = put_settings(&stack, &token, &settings).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let work_session = || kustomer_status(&stack, "kus-user-2");
        let counts = || async {
            let state = sim_state(&stack).await;
            let writes: Value = reqwest::get(format!("{}/_sim/kustomer/writes", stack.simulator))
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            let kustomer_writes = writes
                .as_array()
                .map(|w| {
                    w.iter()
                        .filter(|w| {
                            w["path"]
                                .as_str()
                                .unwrap_or_default()
                                .starts_with("/v1/routing/work-sessions")
                        })
                        .count()
                })
                .unwrap_or_else(|| usize::MAX);
            let ccai = state["ccai"]["status_requests"].as_array().unwrap().len();
            (kustomer_writes, ccai)
        };
        let (kustomer_before, ccai_before) = counts().await;
        assert_ne!(
            kustomer_before,
            usize::MAX,
            "the simulator lists Kustomer writes"
        );
        for i in 0..50 {
            // From the adapter: CCAI, then written back to Kustomer.
            let (ccai, kustomer) = if i % 2 == 0 {
                (-4, "rs-lunch")
            } else {
                (-1, "rs-email")
            };
            let (status, body) = put_status(&stack, &token, ccai).await;
            assert_eq!(status, StatusCode::OK, "{body}");
            assert_eq!(work_session().await, kustomer, "change {i} written back");
            // Kustomer reports that write back to the adapter: no echo to CCAI.
            let (_, body) = kustomer_change(&stack, &token, kustomer, now()).await;
            assert_eq!(
                body["decision"],
                json!({"action": "ignore", "value": "already_there"})
            );
            // From Kustomer: the agent picks Available there; CCAI follows, nothing written back.
            Client::new()
                .put(format!(
                    "{}/v1/routing/work-sessions/ws-kus-user-2",
                    stack.simulator
                ))
                .bearer_auth("sim-kustomer-key")
                .json(&json!({"status": "rs-available"}))
                .send()
                .await
                .unwrap();
            let (_, body) = kustomer_change(&stack, &token, "rs-available", now()).await;
            assert_eq!(
                body["decision"],
                json!({"action": "set_now", "value": 0}),
                "change {i}"
            );
            assert_eq!(sim_agent(&stack, 102).await["status_id"], 0);
        }
        let (kustomer_after, ccai_after) = counts().await;
        assert_eq!(
            kustomer_after - kustomer_before,
            100,
            "50 write-backs by the gateway and 50 changes made in Kustomer, nothing more"
        );
        assert_eq!(
            ccai_after - ccai_before,
            100,
            "50 changes from the adapter and 50 inherited from Kustomer, no echo"
        );
    }

    #[tokio::test]
    async fn rule_2_kustomer_replaces_even_a_later_next_status_of_the_agent() {
        for (rule, want) in [
            (
                "latest_wins",
                json!({"action": "ignore", "value": "agents_next_is_later"}),
            ),
            (
                "kustomer_overrides_next",
                json!({"action": "set_next", "value": -4}),
            ),
        ] {
            let (stack, token) = configured(&format!("inherit-{rule}"), rule).await;
            force(&stack, 102, -7).await;
            let kustomer_at = now();
            // The agent chose Break as the next status after the Kustomer change was made.
            let (status, _) = call(
                Client::new()
                    .put(format!("{}/status", stack.gateway))
                    .bearer_auth(&token)
                    .json(&json!({"status_id": -2, "at_ms": kustomer_at + 500})),
            )
            .await;
            assert_eq!(status, StatusCode::ACCEPTED);
            let (_, body) = kustomer_change(&stack, &token, "st-lunch", kustomer_at).await;
            assert_eq!(body["decision"], want, "{rule}");
        }
    }
}
