//! Session webhooks in, and call controls out: the simulator plays the CCAI Platform on
//! loopback, sends its webhooks to the gateway, and takes the forwarded controls.

use std::time::Duration;

use reqwest::{Client, StatusCode};
use serde_json::{json, Value};

mod support;

use support::{call, code, CHAT_HOOK_PASSWORD, CHAT_HOOK_USER, HOOK_PASSWORD, HOOK_USER};

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
    support::sign_in(&stack.gateway, email).await
}

fn hook(stack: &Stack, body: &Value) -> reqwest::RequestBuilder {
    Client::new()
        .post(format!("{}/webhooks/ccai/calls", stack.gateway))
        .basic_auth(HOOK_USER, Some(HOOK_PASSWORD))
        .json(body)
}

/// The documented envelope around `events`.
fn batch(events: &[Value]) -> Value {
    json!({"count": events.len(), "events": events})
}

/// The six documented steps of one answered call for Grace (agent 102), call `call_id`,
/// event ids unique to `tag`.
fn lifecycle(tag: u32, call_id: &str) -> Vec<Value> {
    adapter_core::ccai_events::examples::lifecycle()
        .into_iter()
        .enumerate()
        .map(|(i, mut event)| {
            event["event_id"] = json!(format!("{tag:08x}-0000-4000-8000-{i:012x}"));
            event["item"]["call_id"] = json!(call_id);
            if let Some(participants) = event["item"]["participants"].as_array_mut() {
                for p in participants.iter_mut().filter(|p| p["type"] == "agent") {
                    p["id"] = json!(102);
                }
            }
            if event["item"]["initiator"] == "agent_101" {
                event["item"]["initiator"] = json!("agent_102");
            }
            event
        })
        .collect()
}

type Socket = support::Socket;

async fn open(stack: &Stack, token: &str) -> Socket {
    support::open_stream(&stack.gateway, token).await
}

/// The stream's next message, within 10 s.
async fn next(socket: &mut Socket) -> Value {
    match support::stream_next(socket, Duration::from_secs(10)).await {
        support::StreamNext::Message(message) => message,
        support::StreamNext::Closed(frame) => panic!("the stream closed: {frame:?}"),
    }
}

#[tokio::test]
async fn session_events_need_their_endpoints_credentials_the_documented_envelope_and_count_once() {
    let stack = stack(
        "hooks",
        Options {
            webhooks: true,
            call_controls: true,
        },
    )
    .await;
    let token = signed_in(&stack, "grace.hopper@example.com").await;
    let calls = format!("{}/webhooks/ccai/calls", stack.gateway);
    let events = lifecycle(1, "846802bf90d1");

    let (status, body) = call(Client::new().post(&calls).json(&batch(&events))).await;
    assert_eq!(
        (status, code(&body)),
        (StatusCode::UNAUTHORIZED, "unauthenticated")
    );
    let (status, _) = call(
        Client::new()
            .post(&calls)
            .basic_auth(HOOK_USER, Some("guess"))
            .json(&batch(&events)),
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, _) = call(
        Client::new()
            .post(&calls)
            .basic_auth(CHAT_HOOK_USER, Some(CHAT_HOOK_PASSWORD))
            .json(&batch(&events)),
    )
    .await;
    assert_eq!(
        status,
        StatusCode::UNAUTHORIZED,
        "the chat events' credentials do not open the call endpoint"
    );

    // The shape this gateway once guessed is not the envelope.
    let guessed = json!({"event_id": "sim-1", "event_type": "call.offered",
        "session": {"type": "call", "id": 777, "status": "ringing"}});
    let (status, body) = call(hook(&stack, &guessed)).await;
    assert_eq!(
        (status, code(&body)),
        (StatusCode::BAD_REQUEST, "invalid_webhook")
    );
    assert_eq!(body["error"]["message"], "events is missing");

    let mut huge = batch(&events);
    huge["padding"] = json!("x".repeat(2 * 1024 * 1024 + 1));
    let (status, body) = call(hook(&stack, &huge)).await;
    assert_eq!(
        (status, code(&body)),
        (StatusCode::PAYLOAD_TOO_LARGE, "body_too_large")
    );

    // One bad event is refused with its reason; the rest of its batch is kept.
    let mut first = events[..3].to_vec();
    first[1]["timestamp"] = json!(1_795_276_800);
    let (status, body) = call(hook(&stack, &batch(&first))).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["accepted"], 2);
    assert_eq!(body["refused"][0]["index"], 1);
    assert_eq!(
        body["refused"][0]["reason"],
        "timestamp must be epoch milliseconds (13 digits)"
    );
    // Nothing in a POST could be taken: an error, with every reason.
    let (status, body) = call(hook(&stack, &batch(&[json!({"event_id": "x"})]))).await;
    assert_eq!(
        (status, code(&body)),
        (StatusCode::BAD_REQUEST, "invalid_webhook")
    );

    // The whole lifecycle in one POST: the two already taken are duplicates.
    let (status, body) = call(hook(&stack, &batch(&events))).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        (&body["accepted"], &body["duplicates"]),
        (&json!(4), &json!(2))
    );
    let (status, body) = call(hook(&stack, &batch(&events))).await;
    assert_eq!(
        (status, &body["accepted"], &body["duplicates"]),
        (StatusCode::OK, &json!(0), &json!(6))
    );

    // The stream shows the call ended, and the platform's status read after it.
    let mut socket = open(&stack, &token).await;
    let mut seen = Seen::default();
    let snapshot = next(&mut socket).await;
    assert_eq!(snapshot["type"], "snapshot");
    seen.take_snapshot(&snapshot);
    until(&mut socket, &mut seen, |s| {
        s.last_call.as_deref() == Some("ended") && s.status.as_deref() == Some("Available")
    })
    .await;
    assert_eq!(seen.number.as_deref(), Some("+14155552671"));
}

#[tokio::test]
async fn the_lifecycle_over_six_posts_moves_the_call_and_the_status_and_a_late_event_is_not_shown()
{
    let stack = stack(
        "lifecycle",
        Options {
            webhooks: true,
            call_controls: true,
        },
    )
    .await;
    let (_, mut socket, mut seen) = watching(&stack).await;
    let events = lifecycle(2, "5501");
    // Active arrives after Ended: recorded, never shown.
    let mut final_posted = None;
    for index in [0, 1, 2, 4, 3, 5] {
        if index == 5 {
            final_posted = Some(std::time::Instant::now());
        }
        let (status, body) = call(hook(&stack, &batch(&events[index..=index]))).await;
        assert_eq!(
            (status, &body["accepted"]),
            (StatusCode::OK, &json!(1)),
            "{body}"
        );
        match index {
            2 => {
                until(&mut socket, &mut seen, |s| {
                    s.calls.last().is_some_and(|c| c == "ringing")
                })
                .await
            }
            4 => {
                until(&mut socket, &mut seen, |s| {
                    s.calls.last().is_some_and(|c| c == "wrap_up")
                        && s.statuses.last().is_some_and(|c| c == "Wrap-up")
                })
                .await
            }
            _ => {}
        }
    }
    until(&mut socket, &mut seen, |s| {
        s.calls.last().is_some_and(|c| c == "ended") && s.status.as_deref() == Some("Available")
    })
    .await;
    // A figure, not a check: how stale the agent's status is after the final event (the
    // directory read it waits for, gathered over 200 ms).
    if let Some(posted) = final_posted {
        eprintln!(
            "status after the final event shown in {} ms",
            posted.elapsed().as_millis()
        );
    }
    assert_eq!(
        seen.calls,
        ["ringing", "wrap_up", "ended"],
        "the late 'active' did not take the call back"
    );
    assert_eq!(seen.statuses, ["Wrap-up", "Available"]);

    // A state this gateway does not know is recorded and counted, not acted on.
    let mut odd = lifecycle(3, "5502").remove(0);
    odd["item"]["state"] = json!("parked");
    let (status, body) = call(hook(&stack, &batch(&[odd]))).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        (&body["accepted"], &body["unknown_state"]),
        (&json!(1), &json!(1))
    );
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
    for endpoint in ["calls", "chats"] {
        let (status, body) = call(
            Client::new()
                .post(format!("{}/webhooks/ccai/{endpoint}", stack.gateway))
                .basic_auth(HOOK_USER, Some(HOOK_PASSWORD))
                .json(&batch(&lifecycle(4, "1"))),
        )
        .await;
        assert_eq!(
            (status, code(&body)),
            (StatusCode::SERVICE_UNAVAILABLE, "webhooks_disabled"),
            "{endpoint}"
        );
    }
    let (status, _) = call(
        Client::new()
            .post(format!("{}/webhooks/ccai/extension", stack.gateway))
            .basic_auth(HOOK_USER, Some(HOOK_PASSWORD))
            .json(&json!({})),
    )
    .await;
    assert_eq!(
        status,
        StatusCode::NOT_FOUND,
        "the extension is off for a real tenant"
    );
}

#[tokio::test]
async fn the_extension_takes_only_what_the_documented_events_do_not_tell() {
    let stack = stack(
        "extension",
        Options {
            webhooks: true,
            call_controls: true,
        },
    )
    .await;
    let connected = json!({
        "event_id": "ext-1", "event_type": "call.connected", "occurred_at": "2026-11-21T16:00:00.000Z",
        "session": {"type": "call", "id": 777, "status": "connected", "direction": "inbound"},
    });
    let (status, body) = call(
        Client::new()
            .post(format!("{}/webhooks/ccai/extension", stack.gateway))
            .basic_auth(HOOK_USER, Some(HOOK_PASSWORD))
            .json(&connected),
    )
    .await;
    assert_eq!(
        (status, code(&body)),
        (StatusCode::BAD_REQUEST, "invalid_webhook")
    );
    let mut held = connected.clone();
    held["event_type"] = json!("call.held");
    held["session"]["status"] = json!("on_hold");
    let (status, body) = call(
        Client::new()
            .post(format!("{}/webhooks/ccai/extension", stack.gateway))
            .basic_auth(HOOK_USER, Some(HOOK_PASSWORD))
            .json(&held),
    )
    .await;
    assert_eq!(
        (status, body),
        (StatusCode::OK, json!({"duplicate": false}))
    );
}

/// What the stream says happened: call states and status names, each change once, and the
/// latest call's id (the gateway's) and number.
#[derive(Default, Debug)]
struct Seen {
    calls: Vec<String>,
    statuses: Vec<String>,
    call_id: Option<i64>,
    number: Option<String>,
    last_call: Option<String>,
    status: Option<String>,
}

impl Seen {
    fn take_snapshot(&mut self, snapshot: &Value) {
        let state = &snapshot["state"];
        self.status = state["status"]["name"].as_str().map(str::to_owned);
        for call in [&state["call"], &state["last_call"]] {
            if call.is_object() {
                self.call_id = call["call_id"].as_i64();
                self.number = call["number"].as_str().map(str::to_owned);
                self.last_call = call["state"].as_str().map(str::to_owned);
                break;
            }
        }
    }

    fn take(&mut self, message: &Value) {
        if message["type"] == "snapshot" {
            self.take_snapshot(message);
            return;
        }
        let event = &message["event"];
        if event["kind"] == "call" {
            self.call_id = event["call_id"].as_i64();
            self.number = event["number"].as_str().map(str::to_owned);
            self.last_call = event["state"].as_str().map(str::to_owned);
        }
        if event["kind"] == "status_changed" {
            self.status = event["status"]["name"].as_str().map(str::to_owned);
        }
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

/// Grace signed in, her stream open, and what its first snapshot says.
async fn watching(stack: &Stack) -> (String, Socket, Seen) {
    let token = signed_in(stack, "grace.hopper@example.com").await;
    let mut socket = open(stack, &token).await;
    let mut seen = Seen::default();
    seen.take_snapshot(&next(&mut socket).await);
    (token, socket, seen)
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
    // The adapter names the call by the gateway's id (the platform's is another's to choose).
    let call_id = seen.call_id.expect("the ringing call has an id");

    let control = |action: &str, body: Value| {
        http.post(format!("{}/api/v1/calls/{call_id}/{action}", stack.gateway))
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

#[tokio::test]
async fn repeated_and_reversed_deliveries_and_a_chat_on_its_own_endpoint_reach_the_agent_once() {
    let stack = stack(
        "faults",
        Options {
            webhooks: true,
            call_controls: true,
        },
    )
    .await;
    let http = Client::new();
    let (status, _) = call(
        http.post(format!("{}/_sim/faults", stack.simulator))
            .json(&json!({"repeat_events": true, "reverse_events": true})),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let (token, mut socket, mut seen) = watching(&stack).await;

    let (status, session) = call(
        http.post(format!("{}/_sim/scenarios", stack.simulator))
            .json(&json!({"kind": "chat", "agent_id": 102})),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{session}");
    until(&mut socket, &mut seen, |s| {
        s.calls.last().is_some_and(|c| c == "ringing")
    })
    .await;
    let call_id = seen.call_id.expect("the chat has an id");
    let control = |action: &str| {
        http.post(format!("{}/api/v1/calls/{call_id}/{action}", stack.gateway))
            .bearer_auth(&token)
            .json(&json!({}))
    };
    let (status, body) = call(control("answer")).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    until(&mut socket, &mut seen, |s| {
        s.statuses.last().is_some_and(|c| c == "In-chat")
    })
    .await;
    let (status, _) = call(control("end")).await;
    assert_eq!(status, StatusCode::ACCEPTED);
    let id = session["id"].as_i64().unwrap();
    let (status, _) =
        call(http.post(format!("{}/_sim/calls/{id}/wrap_up_done", stack.simulator))).await;
    assert_eq!(status, StatusCode::OK);
    until(&mut socket, &mut seen, |s| {
        s.calls.last().is_some_and(|c| c == "ended")
            && s.statuses.last().is_some_and(|c| c == "Available")
    })
    .await;
    // Each POST came twice, its events newest first: no change was shown twice or after a
    // later one (an event overtaken inside its POST is skipped, e.g. wrap-up when the final
    // event came first).
    let order = |seen: &[String], lifecycle: &[&str]| {
        let ranks: Vec<usize> = seen
            .iter()
            .map(|s| lifecycle.iter().position(|l| l == s).unwrap_or(usize::MAX))
            .collect();
        ranks.windows(2).all(|w| w[0] < w[1])
    };
    assert!(
        order(&seen.calls, &["ringing", "connected", "wrap_up", "ended"]),
        "{:?}",
        seen.calls
    );
    assert!(
        order(&seen.statuses, &["In-chat", "Wrap-up", "Available"]),
        "{:?}",
        seen.statuses
    );
    let (_, state) = call(http.get(format!("{}/_sim/state", stack.simulator))).await;
    let deliveries = state["webhooks"].as_array().cloned().unwrap_or_default();
    assert!(
        deliveries
            .iter()
            .filter(|d| d["endpoint"] != "extension")
            .all(|d| d["endpoint"] == "chats" && d["state"] == "delivered"),
        "chat events go to the chat endpoint: {deliveries:?}"
    );
}

#[tokio::test]
async fn a_backlog_batch_of_hundreds_of_events_is_taken_whole() {
    let stack = stack(
        "backlog",
        Options {
            webhooks: true,
            call_controls: true,
        },
    )
    .await;
    // 100 calls' six events with long wrap-up notes: far over the API's 64 KiB bodies.
    let events: Vec<Value> = (0..100u32)
        .flat_map(|call| lifecycle(1000 + call, &format!("backlog{call}")))
        .map(|mut e| {
            if e["item"]["dispositions"].is_object() {
                e["item"]["dispositions"]["note"] = json!("n".repeat(1900));
            }
            e
        })
        .take(500)
        .collect();
    let body = batch(&events);
    assert!(body.to_string().len() > 256 * 1024);
    let (status, answer) = call(hook(&stack, &body)).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(answer["accepted"], 500);
}

#[tokio::test]
async fn a_late_event_of_an_earlier_call_does_not_replace_the_call_the_agent_is_in() {
    let stack = stack(
        "other-call",
        Options {
            webhooks: true,
            call_controls: true,
        },
    )
    .await;
    let (_, mut socket, mut seen) = watching(&stack).await;
    let first = lifecycle(7, "7001");
    let second = lifecycle(8, "7002");
    // Call 7001 is assigned and connected; its end is delayed. Call 7002 comes after and
    // connects; then 7001's end arrives.
    for event in [&first[2], &first[3], &second[2], &second[3]] {
        let (status, _) = call(hook(&stack, &batch(std::slice::from_ref(event)))).await;
        assert_eq!(status, StatusCode::OK);
    }
    until(&mut socket, &mut seen, |s| {
        s.number.is_some() && s.calls.iter().filter(|c| *c == "connected").count() == 2
    })
    .await;
    let current = seen.call_id;
    let (status, body) = call(hook(&stack, &batch(&first[4..5]))).await;
    assert_eq!((status, &body["accepted"]), (StatusCode::OK, &json!(1)));
    // A marker the agent does see: the second call's end.
    let (status, _) = call(hook(&stack, &batch(&second[4..5]))).await;
    assert_eq!(status, StatusCode::OK);
    until(&mut socket, &mut seen, |s| {
        s.calls.last().is_some_and(|c| c == "wrap_up")
    })
    .await;
    assert_eq!(
        seen.call_id, current,
        "only the call the agent was in moved"
    );
    assert_eq!(
        seen.calls,
        ["ringing", "connected", "ringing", "connected", "wrap_up"],
        "the first call's late end was not shown over the second"
    );
}
