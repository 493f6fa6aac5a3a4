//! What the gateway's integration tests share: the simulator and a gateway on loopback (the
//! gateway's CCAI and Kustomer sides pointed at the simulator, its webhooks sent to the
//! gateway when asked), and JSON calls.
#![allow(dead_code)] // each test binary uses its own part

pub mod process;

use std::{net::SocketAddr, path::PathBuf};

use adapter_gateway::{
    config::{Config, Secret},
    Gateway,
};
use adapter_simulator::{webhooks::Target, Simulator};
use reqwest::StatusCode;
use serde_json::Value;

pub const HOOK_USER: &str = "ccai-hooks";
pub const HOOK_PASSWORD: &str = "hook-secret";
/// The chat events' credentials: configured apart from the call events', as on the platform.
pub const CHAT_HOOK_USER: &str = "ccai-chat-hooks";
pub const CHAT_HOOK_PASSWORD: &str = "chat-hook-secret";

/// A running simulator and gateway; both stop when this is dropped.
pub struct Running {
    pub gateway: SocketAddr,
    pub simulator: SocketAddr,
    /// The gateway's data folder (its store).
    pub data_dir: PathBuf,
    /// The gateway's configuration, for replicas ([`Running::start_replica`]).
    config: Config,
    gateway_stop: Option<tokio::sync::oneshot::Sender<()>>,
    gateway_stopped: Option<tokio::task::JoinHandle<()>>,
    _stops: Vec<tokio::sync::oneshot::Sender<()>>,
}

impl Running {
    /// The gateway's base URL, `http://…`.
    pub fn gateway_url(&self) -> String {
        format!("http://{}", self.gateway)
    }

    /// The simulator's API base URL.
    pub fn simulator_url(&self) -> String {
        format!("http://{}", self.simulator)
    }

    /// Starts another gateway on the same store (the test suites' PostgreSQL database for the
    /// data folder: replicas need one), with the same configuration and simulator; its base
    /// URL. It stops when this is dropped.
    pub async fn start_replica(&mut self) -> String {
        let mut config = self.config.clone();
        config.listen = "127.0.0.1:0".parse().unwrap();
        let gateway = Gateway::start(config).await.unwrap();
        let addr = gateway.local_addr().unwrap();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(async move {
            let _ = gateway
                .serve(async {
                    let _ = stopped.await;
                })
                .await;
        });
        self._stops.push(stop);
        format!("http://{addr}")
    }

    /// Stops the gateway as its shutdown signal does (the simulator keeps running) and waits
    /// until it has finished.
    pub async fn stop_gateway(&mut self) {
        if let Some(stop) = self.gateway_stop.take() {
            let _ = stop.send(());
        }
        if let Some(stopped) = self.gateway_stopped.take() {
            tokio::time::timeout(std::time::Duration::from_secs(30), stopped)
                .await
                .expect("the gateway stops within 30 s")
                .expect("the gateway's task");
        }
    }
}

/// How to start them.
pub struct Start<'a> {
    /// Names the gateway's data folder (fresh for each run).
    pub name: &'a str,
    /// The simulator sends its session webhooks to the gateway, which accepts them.
    pub webhooks: bool,
    /// The simulator offers call controls.
    pub call_controls: bool,
}

impl<'a> Start<'a> {
    pub fn new(name: &'a str) -> Self {
        Start {
            name,
            webhooks: false,
            call_controls: true,
        }
    }

    /// Starts both; `configure` adjusts the gateway's configuration last.
    pub async fn run(self, configure: impl FnOnce(&mut Config)) -> Running {
        let mut sim_config = adapter_simulator::config::Config::for_tests(
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../host"),
        );
        sim_config.call_controls = self.call_controls;
        let simulator = Simulator::start(sim_config).await.unwrap();
        let (sim_api, _) = simulator.local_addrs().unwrap();
        let hooks = simulator.webhooks();
        let (sim_stop, sim_stopped) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(simulator.serve(async {
            let _ = sim_stopped.await;
        }));

        let dir =
            std::env::temp_dir().join(format!("adapter-test-{}-{}", self.name, std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let listen: SocketAddr = "127.0.0.1:0".parse().unwrap();
        let mut config = Config::for_tests(listen, dir);
        config.ccai_url = format!("http://{sim_api}");
        config.crm.kustomer_url = format!("http://{sim_api}");
        if self.webhooks {
            config.call_webhook_user = Some(HOOK_USER.into());
            config.chat_webhook_user = Some(CHAT_HOOK_USER.into());
            config.ccai_extension = true;
            config.call_webhook_password = Some(Secret::new(HOOK_PASSWORD));
            config.chat_webhook_password = Some(Secret::new(CHAT_HOOK_PASSWORD));
        }
        configure(&mut config);
        let data_dir = config.data_dir.clone();
        let replica_config = config.clone();
        let gateway = Gateway::start(config).await.unwrap();
        let addr = gateway.local_addr().unwrap();
        if self.webhooks {
            hooks.set_target(Some(Target {
                url: format!("http://{addr}/webhooks/ccai"),
                user: HOOK_USER.into(),
                password: HOOK_PASSWORD.into(),
                chat_user: CHAT_HOOK_USER.into(),
                chat_password: CHAT_HOOK_PASSWORD.into(),
            }));
        }
        let (gw_stop, gw_stopped) = tokio::sync::oneshot::channel::<()>();
        let served = tokio::spawn(async move {
            let _ = gateway
                .serve(async {
                    let _ = gw_stopped.await;
                })
                .await;
        });
        Running {
            gateway: addr,
            simulator: sim_api,
            data_dir,
            config: replica_config,
            gateway_stop: Some(gw_stop),
            gateway_stopped: Some(served),
            _stops: vec![sim_stop],
        }
    }
}

/// Sends `request`; its status and JSON body (`null` when it has none).
pub async fn call(request: reqwest::RequestBuilder) -> (StatusCode, Value) {
    let response = request.send().await.unwrap();
    let status = response.status();
    (status, response.json().await.unwrap_or(Value::Null))
}

/// The stable code of an agent API error.
pub fn code(body: &Value) -> &str {
    body["error"]["code"].as_str().unwrap_or("-")
}

/// Sends `request` and requires a 2xx answer: its JSON body (`null` when it has none). Any
/// other answer, or none, fails the test with `what` and the answer.
/// How many times the simulated tenant's agent directory (`/manager/api/v1/agents`) was read.
pub async fn directory_reads(simulator_url: &str) -> usize {
    let state = ok(
        "simulator state",
        reqwest::Client::new().get(format!("{simulator_url}/_sim/state")),
    )
    .await;
    state["requests"]
        .as_array()
        .expect("recorded requests")
        .iter()
        .filter(|r| {
            r["path"]
                .as_str()
                .is_some_and(|p| p.starts_with("/manager/api/v1/agents"))
        })
        .count()
}

pub async fn ok(what: &str, request: reqwest::RequestBuilder) -> Value {
    let response = request
        .send()
        .await
        .unwrap_or_else(|e| panic!("{what}: {e}"));
    let status = response.status();
    let body = response.json().await.unwrap_or(Value::Null);
    assert!(status.is_success(), "{what}: {status} {body}");
    body
}

/// Sends the request `make` builds until the answer is not a 429 (the simulated tenant's 10
/// requests per second apply to the tests' own calls too), waiting as `Retry-After` says
/// (200 ms when it says nothing), for up to 30 s.
pub async fn retry_429(make: impl Fn() -> reqwest::RequestBuilder) -> reqwest::Response {
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let response = make().send().await.expect("an answer");
        if response.status() != StatusCode::TOO_MANY_REQUESTS {
            return response;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "still 429 after 30 s"
        );
        let wait = response
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok())
            .map_or(std::time::Duration::from_millis(200), |s| {
                std::time::Duration::from_millis(s.min(2) * 1000)
            });
        tokio::time::sleep(wait).await;
    }
}

/// Signs `email` in through the development sign-in (the host saying the Kustomer user has the
/// same email); its token.
pub async fn sign_in(gateway: &str, email: &str) -> String {
    let body = ok(
        &format!("sign-in of {email}"),
        reqwest::Client::new()
            .post(format!("{gateway}/api/v1/sessions"))
            .json(&serde_json::json!({"email": email, "kustomer_user": {"id": "kus-1", "email": email}})),
    )
    .await;
    body["token"].as_str().expect("a token").to_owned()
}

/// Polls `check` every 20 ms until it answers `Some`, for up to `within`; fails naming `what`
/// and the last thing `check` saw otherwise.
pub async fn eventually<T, F, Fut>(what: &str, within: std::time::Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, String>>,
{
    let deadline = tokio::time::Instant::now() + within;
    loop {
        match check().await {
            Ok(value) => return value,
            Err(seen) => assert!(
                tokio::time::Instant::now() < deadline,
                "not within {within:?}: {what} (last seen: {seen})"
            ),
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

pub type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// The event stream's URL on `gateway` (no query: the token goes in the first message).
pub fn stream_url(gateway: &str) -> String {
    format!("{}/api/v1/events", gateway.replacen("http://", "ws://", 1))
}

/// A socket to the event stream, upgraded but not yet authenticated.
pub async fn connect_stream(gateway: &str) -> Socket {
    tokio_tungstenite::connect_async(stream_url(gateway))
        .await
        .expect("the stream opens")
        .0
}

/// Sends `auth` as the stream's first message.
pub async fn authenticate(socket: &mut Socket, auth: &adapter_core::agent_events::StreamAuth) {
    use futures_util::SinkExt;
    let text = serde_json::to_string(auth).expect("the auth message encodes");
    socket
        .send(tokio_tungstenite::tungstenite::Message::Text(text.into()))
        .await
        .expect("the auth message is sent");
}

/// The agent's event stream, opened and authenticated with `auth`.
pub async fn open_stream_with(
    gateway: &str,
    auth: &adapter_core::agent_events::StreamAuth,
) -> Socket {
    let mut socket = connect_stream(gateway).await;
    authenticate(&mut socket, auth).await;
    socket
}

/// The agent's event stream, opened with `token`.
pub async fn open_stream(gateway: &str, token: &str) -> Socket {
    let auth = adapter_core::agent_events::StreamAuth::new(token.to_owned(), None, None);
    open_stream_with(gateway, &auth).await
}

/// What the stream says next: a JSON message, or how it closed.
#[derive(Debug)]
pub enum StreamNext {
    Message(Value),
    Closed(Option<(u16, String)>),
}

/// The next text message or close of `socket`, within `within`.
pub async fn stream_next(socket: &mut Socket, within: std::time::Duration) -> StreamNext {
    use futures_util::StreamExt;
    use tokio_tungstenite::tungstenite::Message;
    loop {
        let frame = tokio::time::timeout(within, socket.next())
            .await
            .unwrap_or_else(|_| panic!("nothing on the stream within {within:?}"));
        match frame {
            None => return StreamNext::Closed(None),
            Some(Err(e)) => panic!("the stream failed: {e}"),
            Some(Ok(Message::Text(text))) => {
                return StreamNext::Message(serde_json::from_str(&text).expect("JSON"))
            }
            Some(Ok(Message::Close(frame))) => {
                return StreamNext::Closed(frame.map(|f| (u16::from(f.code), f.reason.to_string())))
            }
            Some(Ok(_)) => {}
        }
    }
}

/// Reads `socket` until it closes (skipping messages) within `within`; the close code and reason.
pub async fn stream_close(
    socket: &mut Socket,
    within: std::time::Duration,
) -> Option<(u16, String)> {
    let deadline = tokio::time::Instant::now() + within;
    loop {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        match stream_next(socket, left).await {
            StreamNext::Closed(frame) => return frame,
            StreamNext::Message(_) => {}
        }
    }
}

/// One inbound call to `agent_id` on the simulator at `simulator`, answered, ended by the
/// customer and wrapped up on the platform; its simulator id.
pub async fn answered_call(simulator: &str, agent_id: i64, number: &str) -> i64 {
    let session = ok(
        "the inbound call scenario",
        reqwest::Client::new()
            .post(format!("{simulator}/_sim/scenarios"))
            .json(&serde_json::json!({"kind": "inbound_call", "agent_id": agent_id, "number": number})),
    )
    .await;
    let id = session["id"].as_i64().expect("a session id");
    for event in ["answer", "customer_hang_up", "wrap_up_done"] {
        ok(
            &format!("{event} of call {id}"),
            reqwest::Client::new().post(format!("{simulator}/_sim/calls/{id}/{event}")),
        )
        .await;
    }
    id
}
