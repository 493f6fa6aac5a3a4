//! The simulator over real HTTP on loopback.

use adapter_core::{agent_events::Channel, ccai_events};
use std::path::PathBuf;

use adapter_simulator::{config::Config, Simulator};

fn host_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../host")
}

async fn start() -> (String, String, tokio::sync::oneshot::Sender<()>) {
    let mut config = Config::for_tests(host_dir());
    config.adapter_url = "http://127.0.0.1:1/\"</script>".into();
    let simulator = Simulator::start(config).await.unwrap();
    let (api, host) = simulator.local_addrs().unwrap();
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(simulator.serve(async {
        let _ = rx.await;
    }));
    (format!("http://{api}"), format!("http://{host}"), tx)
}

async fn status(request: reqwest::RequestBuilder) -> u16 {
    request.send().await.unwrap().status().as_u16()
}

/// The recorded requests as (method, path, status).
async fn recorded(client: &reqwest::Client, api: &str) -> Vec<(String, String, u64)> {
    let state: serde_json::Value = client
        .get(format!("{api}/_sim/state"))
        .send()
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
            (
                r["method"].as_str().unwrap().to_owned(),
                r["path"].as_str().unwrap().to_owned(),
                r["status"].as_u64().unwrap(),
            )
        })
        .collect()
}

#[tokio::test]
async fn records_api_requests_and_reports_them_as_state() {
    let (api, _host, _stop) = start().await;
    let client = reqwest::Client::new();
    assert_eq!(status(client.get(format!("{api}/healthz"))).await, 200);
    assert_eq!(status(client.get(format!("{api}/nope"))).await, 404);
    let seen = recorded(&client, &api).await;
    let seen: Vec<(&str, &str, u64)> = seen
        .iter()
        .map(|(m, p, s)| (m.as_str(), p.as_str(), *s))
        .collect();
    assert_eq!(
        seen,
        [("GET", "/healthz", 200), ("GET", "/nope", 404)],
        "reads of /_sim/ are not recorded"
    );

    assert_eq!(status(client.post(format!("{api}/_sim/reset"))).await, 204);
    assert!(recorded(&client, &api).await.is_empty());
}

#[tokio::test]
async fn serves_the_host_emulator_with_an_escaped_adapter_url() {
    let (api, host, _stop) = start().await;
    let page = reqwest::get(format!("{host}/")).await.unwrap();
    assert_eq!(page.status(), 200);
    assert!(page.text().await.unwrap().contains("adapter-frame"));
    let config = reqwest::get(format!("{host}/config.js"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(
        config,
        format!("window.HOST_CONFIG = {{\"adapterUrl\":\"http://127.0.0.1:1/\\\"</script>\",\"simulatorUrl\":\"{api}\"}};\n")
    );
    let hostile = reqwest::get(format!("{api}/_sim/hostile.html"))
        .await
        .unwrap();
    assert_eq!(hostile.status(), 200);
    assert!(hostile.text().await.unwrap().contains("must ignore"));
}

const BASIC: (&str, &str) = ("demo", "sim-token");

async fn start_with(
    configure: impl FnOnce(&mut Config),
) -> (String, String, tokio::sync::oneshot::Sender<()>) {
    let mut config = Config::for_tests(host_dir());
    configure(&mut config);
    let simulator = Simulator::start(config).await.unwrap();
    let (api, host) = simulator.local_addrs().unwrap();
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(simulator.serve(async {
        let _ = rx.await;
    }));
    (format!("http://{api}"), format!("http://{host}"), tx)
}

async fn json(request: reqwest::RequestBuilder) -> (u16, serde_json::Value) {
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or_default())
}

#[tokio::test]
async fn faults_answer_statuses_then_drop_connections_then_pass_until_reset() {
    let (api, _host, _stop) = start().await;
    let client = reqwest::Client::new();
    let statuses = || {
        client
            .get(format!("{api}/manager/api/v1/user_statuses"))
            .basic_auth(BASIC.0, Some(BASIC.1))
    };
    let (code, _) = json(
        client
            .post(format!("{api}/_sim/faults"))
            .json(&serde_json::json!({"status": 503, "count": 2, "drop": 1, "latency_ms": 50})),
    )
    .await;
    assert_eq!(code, 200);
    let started = std::time::Instant::now();
    assert_eq!(status(statuses()).await, 503);
    assert!(
        started.elapsed() >= std::time::Duration::from_millis(50),
        "latency applies"
    );
    assert_eq!(status(statuses()).await, 503);
    let dropped = match statuses().send().await {
        Ok(response) => response.bytes().await.map(|_| ()),
        Err(error) => Err(error),
    };
    assert!(dropped.is_err(), "the connection is dropped");
    assert_eq!(status(statuses()).await, 200);

    let (code, body) = json(
        client
            .post(format!("{api}/_sim/faults"))
            .json(&serde_json::json!({"status": 429})),
    )
    .await;
    assert_eq!(code, 200, "the 429 fault is set: {body}");
    let limited = statuses().send().await.unwrap();
    assert_eq!(limited.status().as_u16(), 429);
    assert_eq!(limited.headers()["retry-after"], "1");

    let (code, body) = json(
        client
            .post(format!("{api}/_sim/faults"))
            .json(&serde_json::json!({"status": 200})),
    )
    .await;
    assert_eq!((code, body["message"].as_str().is_some()), (400, true));
    let (code, body) = json(
        client
            .post(format!("{api}/_sim/faults"))
            .json(&serde_json::json!({"latency_ms": 30_000})),
    )
    .await;
    assert_eq!(code, 200, "the latency fault is set: {body}");
    assert_eq!(status(client.post(format!("{api}/_sim/reset"))).await, 204);
    let started = std::time::Instant::now();
    assert_eq!(status(statuses()).await, 200);
    assert!(
        // A functional deadline far from both sides: without the reset the answer takes 30 s.
        started.elapsed() < std::time::Duration::from_secs(10),
        "reset clears latency"
    );
}

#[tokio::test]
async fn call_controls_are_an_extension_the_public_api_does_not_have() {
    let (api, _host, _stop) = start_with(|c| c.call_controls = false).await;
    let client = reqwest::Client::new();
    let capabilities = client
        .get(format!("{api}/ext/call-control/v1/capabilities"))
        .basic_auth(BASIC.0, Some(BASIC.1));
    assert_eq!(status(capabilities).await, 404);

    let (api, host, _stop2) = start().await;
    let (code, body) = json(
        client
            .get(format!("{api}/ext/call-control/v1/capabilities"))
            .basic_auth(BASIC.0, Some(BASIC.1)),
    )
    .await;
    assert_eq!(code, 200);
    assert_eq!(body["controls"].as_array().map(Vec::len), Some(10));
    assert_eq!(
        status(client.get(format!("{api}/ext/call-control/v1/capabilities"))).await,
        401,
        "behind the same Basic auth"
    );

    // The host emulator's origin drives scenarios on the same state.
    let (code, session) = json(
        client
            .post(format!("{host}/_sim/scenarios"))
            .json(&serde_json::json!({"kind": "inbound_call", "agent_id": 102})),
    )
    .await;
    assert_eq!(
        (code, &session["status"]),
        (201, &serde_json::json!("ringing"))
    );
    let id = session["id"].as_i64().unwrap();
    let control = |action: &str, body: serde_json::Value| {
        client
            .post(format!("{api}/ext/call-control/v1/calls/{id}/{action}"))
            .basic_auth(BASIC.0, Some(BASIC.1))
            .json(&body)
    };
    let (code, body) = json(control("hold", serde_json::json!({"agent_id": 102}))).await;
    assert_eq!(
        (code, body["message"].as_str()),
        (409, Some("Can't hold a call that is ringing"))
    );
    let (code, body) = json(control("answer", serde_json::json!({"agent_id": 102}))).await;
    assert_eq!(
        (code, &body["status"]),
        (200, &serde_json::json!("connected"))
    );
    let (code, _) = json(control("dtmf", serde_json::json!({"agent_id": 102}))).await;
    assert_eq!(code, 400, "dtmf needs digits");
    let (code, _) = json(control("explode", serde_json::json!({"agent_id": 102}))).await;
    assert_eq!(code, 404);
    let (code, body) = json(client.get(format!("{api}/_sim/state"))).await;
    assert_eq!(code, 200);
    let grace = body["ccai"]["agents"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["id"] == 102)
        .cloned()
        .unwrap();
    assert_eq!(grace["status_id"], -7, "In-call once answered");
}

#[tokio::test]
async fn session_events_go_in_the_documented_envelope_to_each_endpoint_in_order_and_retried() {
    use std::sync::{Arc, Mutex};
    type Received = Vec<(String, Option<String>, serde_json::Value)>;
    let received: Arc<Mutex<Received>> = Arc::default();
    let failures = Arc::new(std::sync::atomic::AtomicU32::new(1));
    let app = {
        let received = received.clone();
        axum::Router::new().route(
            "/hook/{endpoint}",
            axum::routing::post(
                move |axum::extract::Path(endpoint): axum::extract::Path<String>,
                      headers: axum::http::HeaderMap,
                      body: axum::Json<serde_json::Value>| {
                    let received = received.clone();
                    let failures = failures.clone();
                    async move {
                        // The first attempt fails: the same POST must come again, first.
                        if failures
                            .fetch_update(
                                std::sync::atomic::Ordering::SeqCst,
                                std::sync::atomic::Ordering::SeqCst,
                                |n| n.checked_sub(1),
                            )
                            .is_ok()
                        {
                            return axum::http::StatusCode::SERVICE_UNAVAILABLE;
                        }
                        let auth = headers
                            .get("authorization")
                            .and_then(|v| v.to_str().ok())
                            .map(str::to_owned);
                        received.lock().unwrap().push((endpoint, auth, body.0));
                        axum::http::StatusCode::OK
                    }
                },
            ),
        )
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let hook = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });

    let (api, _host, _stop) = start_with(|c| {
        c.webhook_url = Some(hook);
        c.webhook_user = "hooks".into();
        c.webhook_password = "pw".into();
        c.chat_webhook_user = "chats".into();
        c.chat_webhook_password = "cpw".into();
    })
    .await;
    let client = reqwest::Client::new();
    let (code, session) = json(client.post(format!("{api}/_sim/scenarios")).json(
        &serde_json::json!({"kind": "abandoned", "agent_id": 102, "conversation_id": "conv-9"}),
    ))
    .await;
    assert_eq!(code, 201, "{session}");
    let (code, chat) = json(
        client
            .post(format!("{api}/_sim/scenarios"))
            .json(&serde_json::json!({"kind": "chat", "agent_id": 102})),
    )
    .await;
    assert_eq!(code, 201, "{chat}");
    let mut stages: Vec<(String, String)> = Vec::new();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    // started, routing, ended of the call; started, routing of the chat; two offers.
    while stages.len() < 7 {
        assert!(
            std::time::Instant::now() < deadline,
            "events within 10 s: {stages:?}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        stages.clear();
        for (endpoint, _, body) in received.lock().unwrap().iter() {
            match endpoint.as_str() {
                "extension" => stages.push((
                    endpoint.clone(),
                    body["event_type"].as_str().unwrap_or("-").to_owned(),
                )),
                _ => {
                    let channel = if endpoint == "chats" {
                        Channel::Chat
                    } else {
                        Channel::Voice
                    };
                    let events = ccai_events::decode_batch(body.to_string().as_bytes(), channel)
                        .unwrap_or_else(|e| panic!("the gateway's decoder refused {body}: {e}"));
                    assert_eq!(body["count"].as_u64(), Some(events.len() as u64));
                    for event in events {
                        let event = event.unwrap_or_else(|r| panic!("refused: {r:?}"));
                        stages.push((endpoint.clone(), event.stage().as_str().to_owned()));
                    }
                }
            }
        }
    }
    let calls: Vec<&str> = stages
        .iter()
        .filter(|(e, _)| e == "calls")
        .map(|(_, s)| s.as_str())
        .collect();
    assert_eq!(
        calls,
        ["started", "routing", "ended"],
        "the call's lifecycle, in order"
    );
    let chats: Vec<&str> = stages
        .iter()
        .filter(|(e, _)| e == "chats")
        .map(|(_, s)| s.as_str())
        .collect();
    assert_eq!(chats, ["started", "routing"]);
    let offers: Vec<&str> = stages
        .iter()
        .filter(|(e, _)| e == "extension")
        .map(|(_, s)| s.as_str())
        .collect();
    assert_eq!(
        offers,
        ["call.offered", "chat.offered"],
        "the ringing offer is the extension's"
    );
    let received = received.lock().unwrap().clone();
    for (endpoint, auth, _) in &received {
        // "hooks:pw" and "chats:cpw" in base64: each endpoint its own credentials.
        let expected = if endpoint == "chats" {
            "Basic Y2hhdHM6Y3B3"
        } else {
            "Basic aG9va3M6cHc="
        };
        assert_eq!(auth.as_deref(), Some(expected), "{endpoint}");
    }
    let first_call = received
        .iter()
        .find(|(e, _, _)| e == "calls")
        .map(|(_, _, b)| b["events"][0]["item"].clone())
        .unwrap();
    assert_eq!(first_call["call_id"], session["id"]);
    assert_eq!(first_call["dn"], "+14155552671");
    let extension = received
        .iter()
        .find(|(e, _, _)| e == "extension")
        .map(|(_, _, b)| b.clone())
        .unwrap();
    assert!(
        adapter_core::session_webhook::decode(extension.to_string().as_bytes()).is_ok(),
        "the gateway's extension decoder accepts it"
    );
    // The Manager API's call resource says what the events do not: an abandoned call.
    let (code, call) = json(
        client
            .get(format!("{api}/manager/api/v1/calls/{}", session["id"]))
            .basic_auth(BASIC.0, Some(BASIC.1)),
    )
    .await;
    assert_eq!(code, 200, "{call}");
    let details = adapter_core::manager::decode_details(
        call.to_string().as_bytes(),
        &session["id"].to_string(),
        false,
    )
    .unwrap_or_else(|e| panic!("{e}: {call}"));
    assert_eq!(details.status.as_deref(), Some("failed"));
    assert_eq!(details.out_ticket_id.as_deref(), Some("conv-9"));
    assert_eq!(details.agent_id, None, "nobody took it");
    let (code, _) = json(
        client
            .get(format!("{api}/manager/api/v1/chats/{}", session["id"]))
            .basic_auth(BASIC.0, Some(BASIC.1)),
    )
    .await;
    assert_eq!(code, 404, "a call is not a chat");
    let (_, state) = json(client.get(format!("{api}/_sim/state"))).await;
    let first = &state["webhooks"][0];
    assert_eq!(
        (&first["state"], &first["attempts"]),
        (&serde_json::json!("delivered"), &serde_json::json!(2)),
        "the refused first POST was sent again"
    );
}
