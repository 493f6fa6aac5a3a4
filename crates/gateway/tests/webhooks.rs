//! Session webhooks in, and call controls out: the simulator plays the CCAI Platform on
//! loopback, sends its webhooks to the gateway, and takes the forwarded controls.

use std::time::Duration;

use futures_util::StreamExt;
use reqwest::{Client, StatusCode};
use serde_json::{json, Value};
use tokio_tungstenite::{connect_async, tungstenite::Message};

mod support;

use support::{call, code, HOOK_PASSWORD, HOOK_USER};

struct Stack {
    gateway: String,
    simulator: String,
    _running: support::Running,
}

struct Options {
    webhooks: bool,
    call_controls: bool,
}

async fn stack(name: &str, options: Options) -> Stack {
    let running = support::Start {
        name: &format!("webhooks-{name}"),
        webhooks: options.webhooks,
        call_controls: options.call_controls,
    }
    .run(|_| {})
    .await;
    Stack {
        gateway: format!("http://{}", running.gateway),
        simulator: format!("http://{}", running.simulator),
        _running: running,
    }
}

async fn signed_in(stack: &Stack, email: &str) -> String {
    let (status, body) = call(
        Client::new()
            .post(format!("{}/api/v1/sessions", stack.gateway))
            .json(&json!({"email": email, "kustomer_user": {"id": "kus-1", "email": email}})),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    body["token"].as_str().unwrap().to_owned()
}

fn hook(stack: &Stack, body: &Value) -> reqwest::RequestBuilder {
    Client::new()
        .post(format!("{}/webhooks/ccai", stack.gateway))
        .basic_auth(HOOK_USER, Some(HOOK_PASSWORD))
        .json(body)
}

fn offered(event_id: &str) -> Value {
    json!({
        "event_id": event_id, "event_type": "call.offered", "occurred_at": "2026-11-21T16:00:00.000Z",
        "session": {"type": "call", "id": 777, "status": "ringing", "direction": "inbound",
            "end_user": {"identifier": "+14155552671"}, "out_ticket_id": "conv-1",
            "connected_at": null, "ends_at": null, "muted": false, "end_reason": null},
        "agent": {"email": "grace.hopper@example.com", "status": {"id": 0, "name": "Available"}, "next_status": null}
    })
}

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn open(stack: &Stack, token: &str) -> Socket {
    let url = format!(
        "{}/api/v1/events?token={token}",
        stack.gateway.replacen("http://", "ws://", 1)
    );
    connect_async(url).await.expect("the stream opens").0
}

async fn next(socket: &mut Socket) -> Value {
    loop {
        let message = tokio::time::timeout(Duration::from_secs(10), socket.next())
            .await
            .expect("a message within 10 s")
            .expect("the stream is open")
            .expect("a valid frame");
        if let Message::Text(text) = message {
            return serde_json::from_str(&text).unwrap();
        }
    }
}

#[tokio::test]
async fn webhooks_need_credentials_a_valid_body_and_are_processed_once() {
    let stack = stack(
        "hooks",
        Options {
            webhooks: true,
            call_controls: true,
        },
    )
    .await;
    let token = signed_in(&stack, "grace.hopper@example.com").await;
    let url = format!("{}/webhooks/ccai", stack.gateway);

    let (status, body) = call(Client::new().post(&url).json(&offered("e-1"))).await;
    assert_eq!(
        (status, code(&body)),
        (StatusCode::UNAUTHORIZED, "unauthenticated")
    );
    let (status, _) = call(
        Client::new()
            .post(&url)
            .basic_auth(HOOK_USER, Some("guess"))
            .json(&offered("e-1")),
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);

    let mut bad = offered("e-bad");
    bad["session"]["id"] = json!(-1);
    let (status, body) = call(hook(&stack, &bad)).await;
    assert_eq!(
        (status, code(&body)),
        (StatusCode::BAD_REQUEST, "invalid_webhook")
    );
    assert_eq!(
        body["error"]["message"],
        "session.id must be a positive integer"
    );

    let mut huge = offered("e-huge");
    huge["padding"] = json!("x".repeat(70 * 1024));
    let (status, body) = call(hook(&stack, &huge)).await;
    assert_eq!(
        (status, code(&body)),
        (StatusCode::PAYLOAD_TOO_LARGE, "body_too_large")
    );

    let (status, body) = call(hook(&stack, &offered("e-1"))).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        body,
        json!({"duplicate": false, "agent_id": 102}),
        "the email found the agent"
    );
    let (status, body) = call(hook(&stack, &offered("e-1"))).await;
    assert_eq!((status, body), (StatusCode::OK, json!({"duplicate": true})));

    // Sign-in published the status (1), the offer the call (2); the replay nothing.
    let mut socket = open(&stack, &token).await;
    let snapshot = next(&mut socket).await;
    assert_eq!(
        (&snapshot["type"], &snapshot["seq"]),
        (&json!("snapshot"), &json!(2))
    );
    assert_eq!(snapshot["state"]["call"]["call_id"], 777);
    assert_eq!(snapshot["state"]["call"]["state"], "ringing");
    assert_eq!(snapshot["state"]["call"]["conversation_id"], "conv-1");
}

#[tokio::test]
async fn a_gateway_without_webhook_credentials_refuses_webhooks() {
    let stack = stack(
        "no-hooks",
        Options {
            webhooks: false,
            call_controls: true,
        },
    )
    .await;
    let (status, body) = call(hook(&stack, &offered("e-1"))).await;
    assert_eq!(
        (status, code(&body)),
        (StatusCode::SERVICE_UNAVAILABLE, "webhooks_disabled")
    );
}

/// What the stream says happened: call states and status names, each change once.
#[derive(Default, Debug)]
struct Seen {
    calls: Vec<String>,
    statuses: Vec<String>,
}

impl Seen {
    fn take(&mut self, message: &Value) {
        let event = &message["event"];
        let (list, value) = match event["kind"].as_str() {
            Some("call") => (&mut self.calls, event["state"].as_str()),
            Some("status_changed") => (&mut self.statuses, event["status"]["name"].as_str()),
            _ => return,
        };
        if let Some(value) = value {
            if list.last().map(String::as_str) != Some(value) {
                list.push(value.to_owned());
            }
        }
    }
}

async fn until(socket: &mut Socket, seen: &mut Seen, done: impl Fn(&Seen) -> bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while !done(seen) {
        assert!(
            tokio::time::Instant::now() < deadline,
            "stream stalled at {seen:?}"
        );
        let message = next(socket).await;
        seen.take(&message);
    }
}

#[tokio::test]
async fn an_inbound_call_reaches_the_agent_and_controls_are_forwarded() {
    let stack = stack(
        "inbound",
        Options {
            webhooks: true,
            call_controls: true,
        },
    )
    .await;
    let http = Client::new();
    let token = signed_in(&stack, "grace.hopper@example.com").await;
    let (_, me) = call(
        http.get(format!("{}/api/v1/me", stack.gateway))
            .bearer_auth(&token),
    )
    .await;
    assert_eq!(
        me["capabilities"].as_array().map(Vec::len),
        Some(10),
        "{me}"
    );
    assert_eq!(
        me["agent_email"], "grace.hopper@example.com",
        "existing fields stay"
    );

    let mut socket = open(&stack, &token).await;
    let hello = next(&mut socket).await;
    assert_eq!(hello["state"]["status"]["name"], "Available");
    let mut seen = Seen::default();

    let (status, session) = call(
        http.post(format!("{}/_sim/scenarios", stack.simulator))
            .json(&json!({"kind": "inbound_call", "agent_id": 102, "conversation_id": "conv-7"})),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{session}");
    let id = session["id"].as_i64().unwrap();
    until(&mut socket, &mut seen, |s| {
        s.calls.last().is_some_and(|c| c == "ringing")
    })
    .await;

    let control = |action: &str, body: Value| {
        http.post(format!("{}/api/v1/calls/{id}/{action}", stack.gateway))
            .bearer_auth(&token)
            .json(&body)
    };
    // The platform refuses what does not fit the call's state, in its words.
    let (status, body) = call(control("hold", json!({}))).await;
    assert_eq!(
        (status, code(&body)),
        (StatusCode::CONFLICT, "control_refused")
    );
    assert_eq!(
        body["error"]["message"],
        "Can't hold a call that is ringing"
    );
    let (status, body) = call(control("explode", json!({}))).await;
    assert_eq!(
        (status, code(&body)),
        (StatusCode::NOT_FOUND, "unknown_control")
    );
    let (status, body) = call(
        http.post(format!("{}/api/v1/calls/4242/answer", stack.gateway))
            .bearer_auth(&token),
    )
    .await;
    assert_eq!(
        (status, code(&body)),
        (StatusCode::NOT_FOUND, "unknown_call")
    );

    let (status, body) = call(control("answer", json!({}))).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    until(&mut socket, &mut seen, |s| {
        s.calls.last().is_some_and(|c| c == "connected")
            && s.statuses.last().is_some_and(|c| c == "In-call")
    })
    .await;

    let (status, body) = call(control("dtmf", json!({"digits": "12a"}))).await;
    assert_eq!(
        (status, code(&body)),
        (StatusCode::BAD_REQUEST, "invalid_digits")
    );
    let (status, _) = call(control("dtmf", json!({"digits": "12#"}))).await;
    assert_eq!(status, StatusCode::ACCEPTED);

    // During the call, Break waits as the next status.
    let (status, body) = call(
        http.put(format!("{}/api/v1/status", stack.gateway))
            .bearer_auth(&token)
            .json(&json!({"status_id": -2})),
    )
    .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");

    let (status, _) = call(control("hold", json!({}))).await;
    assert_eq!(status, StatusCode::ACCEPTED);
    until(&mut socket, &mut seen, |s| {
        s.calls.last().is_some_and(|c| c == "on_hold")
    })
    .await;
    let (status, _) = call(control("end", json!({}))).await;
    assert_eq!(status, StatusCode::ACCEPTED);
    until(&mut socket, &mut seen, |s| {
        s.statuses.last().is_some_and(|c| c == "Wrap-up")
    })
    .await;

    let (status, _) =
        call(http.post(format!("{}/_sim/calls/{id}/wrap_up_done", stack.simulator))).await;
    assert_eq!(status, StatusCode::OK);
    until(&mut socket, &mut seen, |s| {
        s.calls.last().is_some_and(|c| c == "ended")
            && s.statuses.last().is_some_and(|c| c == "Break")
    })
    .await;
    assert_eq!(
        seen.calls,
        ["ringing", "connected", "on_hold", "wrap_up", "ended"]
    );
    assert_eq!(seen.statuses, ["In-call", "Wrap-up", "Break"]);

    // The simulator got the controls for Grace, the digits included.
    let (_, state) = call(http.get(format!("{}/_sim/state", stack.simulator))).await;
    let session = state["ccai"]["sessions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["id"] == id)
        .cloned()
        .unwrap();
    assert_eq!(
        (&session["status"], &session["dtmf"]),
        (&json!("finished"), &json!("12#"))
    );
    let delivered = state["webhooks"].as_array().unwrap();
    assert!(
        delivered.iter().all(|d| d["state"] == "delivered"),
        "{delivered:?}"
    );
}

#[tokio::test]
async fn an_upstream_without_the_extension_offers_no_controls() {
    let stack = stack(
        "public-api",
        Options {
            webhooks: true,
            call_controls: false,
        },
    )
    .await;
    let http = Client::new();
    let token = signed_in(&stack, "grace.hopper@example.com").await;
    let (_, me) = call(
        http.get(format!("{}/api/v1/me", stack.gateway))
            .bearer_auth(&token),
    )
    .await;
    assert_eq!(me["capabilities"], json!([]));
    let (status, body) = call(
        http.post(format!("{}/api/v1/calls/1001/answer", stack.gateway))
            .bearer_auth(&token),
    )
    .await;
    assert_eq!(
        (status, code(&body)),
        (StatusCode::CONFLICT, "control_not_offered")
    );
}
