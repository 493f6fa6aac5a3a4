//! Loopback stand-ins for the two SaaS APIs the gateway talks to (like stripe-mock is for
//! Stripe), and the host emulator: a page standing in for the Kustomer agent desktop.
//!
//! Two listeners: the API (`--listen`) and the host emulator (`--host-listen`), which must be
//! another origin than the widget so the iframe is cross-origin as in production.

pub use adapter_server_common::{init_tracing, shutdown_signal};

pub mod ccai;
pub mod config;
pub mod desktop;
pub mod faults;
pub mod kustomer;
pub mod recorder;
pub mod sessions;
pub mod webhooks;

use std::{
    future::{Future, IntoFuture},
    net::SocketAddr,
    time::Instant,
};

use axum::{
    extract::{Request, State},
    http::{header, HeaderValue, StatusCode},
    middleware::{self, Next},
    response::{IntoResponse, Response},
    routing::{delete, get, post},
    Json, Router,
};
use serde_json::json;
use tokio::net::TcpListener;
use tower_http::services::ServeDir;

use crate::{
    ccai::Ccai,
    config::Config,
    recorder::Recorder,
    webhooks::{Target, Webhooks},
};

pub const VERSION: &str = env!("CARGO_PKG_VERSION");

#[derive(Clone, Debug)]
pub struct SimState {
    pub recorder: Recorder,
    pub started: Instant,
    pub adapter_url: String,
    /// The simulated APIs' own base URL, for the host emulator's hostile frame.
    pub api_url: String,
    pub ccai: Ccai,
    /// The Kustomer side (`/v1/...`).
    pub kustomer: kustomer::Kustomer,
}

impl axum::extract::FromRef<SimState> for kustomer::Kustomer {
    fn from_ref(state: &SimState) -> kustomer::Kustomer {
        state.kustomer.clone()
    }
}

impl axum::extract::FromRef<SimState> for Ccai {
    fn from_ref(state: &SimState) -> Ccai {
        state.ccai.clone()
    }
}

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SimulatorError {
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("server error: {0}")]
    Serve(std::io::Error),
}

/// A simulator with both sockets bound.
pub struct Simulator {
    api: TcpListener,
    host: TcpListener,
    state: SimState,
    host_dir: std::path::PathBuf,
}

async fn bind(addr: SocketAddr) -> Result<TcpListener, SimulatorError> {
    TcpListener::bind(addr)
        .await
        .map_err(|source| SimulatorError::Listen { addr, source })
}

impl Simulator {
    pub async fn start(config: Config) -> Result<Simulator, SimulatorError> {
        let api = bind(config.listen).await?;
        let host = bind(config.host_listen).await?;
        let api_url = format!(
            "http://{}",
            api.local_addr().map_err(SimulatorError::Serve)?
        );
        let target = config.webhook_url.map(|url| Target {
            url,
            user: config.webhook_user,
            password: config.webhook_password,
            chat_user: config.chat_webhook_user,
            chat_password: config.chat_webhook_password,
        });
        match &target {
            Some(target) => {
                tracing::info!(url = %target.url, "session events go to {0}/calls and {0}/chats", target.url)
            }
            None => tracing::info!("no --webhook-url: session webhooks are off"),
        }
        let webhooks = Webhooks::spawn(
            target,
            adapter_core::backoff::Backoff {
                initial: std::time::Duration::from_millis(200),
                max: std::time::Duration::from_secs(5),
                ..adapter_core::backoff::Backoff::default()
            },
        );
        let mut ccai = Ccai::new(config.ccai_subdomain, config.ccai_token, webhooks);
        ccai.wrap_up = std::time::Duration::from_secs(config.wrap_up_seconds);
        ccai.call_controls = config.call_controls;
        ccai.api_url = api_url.clone();
        let kustomer = kustomer::Kustomer::new(config.kustomer_api_key, config.kustomer_rate_limit);
        *kustomer
            .api_url
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner()) = api_url.clone();
        let simulator = Simulator {
            api,
            host,
            state: SimState {
                recorder: Recorder::default(),
                started: Instant::now(),
                adapter_url: config.adapter_url,
                api_url,
                ccai,
                kustomer,
            },
            host_dir: config.host_dir,
        };
        let (api, host) = simulator.local_addrs().map_err(SimulatorError::Serve)?;
        tracing::info!(version = VERSION, "simulated APIs on http://{api}");
        tracing::info!(adapter = %simulator.state.adapter_url, "host emulator on http://{host}/");
        Ok(simulator)
    }

    /// The API's and the host emulator's addresses.
    pub fn local_addrs(&self) -> std::io::Result<(SocketAddr, SocketAddr)> {
        Ok((self.api.local_addr()?, self.host.local_addr()?))
    }

    pub fn recorder(&self) -> Recorder {
        self.state.recorder.clone()
    }

    /// The webhook sender, e.g. to point it at a gateway started after the simulator.
    pub fn webhooks(&self) -> Webhooks {
        self.state.ccai.webhooks.clone()
    }

    /// Serves both listeners until `shutdown` completes.
    pub async fn serve(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> Result<(), SimulatorError> {
        let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
        let wait = |mut rx: tokio::sync::watch::Receiver<bool>| async move {
            let _ = rx.wait_for(|stop| *stop).await;
        };
        let api = axum::serve(self.api, api_router(self.state.clone()))
            .with_graceful_shutdown(wait(stop_rx.clone()));
        let host = axum::serve(self.host, host_router(self.state, &self.host_dir))
            .with_graceful_shutdown(wait(stop_rx));
        let trigger = async move {
            shutdown.await;
            let _ = stop_tx.send(true);
        };
        let (api, host, ()) = tokio::join!(api.into_future(), host.into_future(), trigger);
        tracing::info!("simulator stopped");
        api.and(host).map_err(SimulatorError::Serve)
    }
}

/// The simulated APIs. Every request is recorded, except reads of the recording itself.
pub fn api_router(state: SimState) -> Router {
    let ccai_api = Router::new()
        .route("/manager/api/v1/agents", get(ccai::agents))
        .route("/manager/api/v1/user_statuses", get(ccai::user_statuses))
        .route("/manager/api/v1/{what}/{id}", get(sessions::resource))
        .route(
            "/apps/api/v1/agent_statuses",
            post(ccai::set_agent_statuses),
        )
        .route("/apps/api/v1/calls", post(ccai::place_call))
        .route(
            "/ext/call-control/v1/capabilities",
            get(sessions::capabilities),
        )
        .route(
            "/ext/call-control/v1/{what}/{id}/{action}",
            post(sessions::control),
        )
        // Only the CCAI routes: a layer would also wrap the fallback, and a 404 would become 401.
        .route_layer(middleware::from_fn_with_state(
            state.ccai.clone(),
            ccai::guard,
        ));
    Router::new()
        .merge(ccai_api)
        .merge(kustomer::routes(state.kustomer.clone()))
        .route("/_sim/ccai/agents/{id}/status", post(ccai::force_status))
        .route("/_sim/ccai/statuses/{id}", delete(ccai::delete_status))
        .route(
            "/_sim/ccai/outbound_numbers",
            post(ccai::set_outbound_numbers),
        )
        .merge(scenario_routes())
        .route("/_sim/faults", post(set_faults))
        .route("/_sim/recordings/{name}", get(recording))
        .route("/healthz", get(healthz))
        .route("/_sim/state", get(sim_state))
        .route("/_sim/reset", post(sim_reset))
        .route("/_sim/hostile.html", get(hostile_page))
        .layer(middleware::from_fn_with_state(state.clone(), record))
        .with_state(state)
}

/// The host emulator: static files, plus `config.js` telling the page where the adapter is.
/// The scenario driver, also on the host emulator's origin so its page calls it same-origin.
fn scenario_routes() -> Router<SimState> {
    Router::new()
        .route("/_sim/scenarios", post(sessions::scenario))
        .route("/_sim/sessions", get(sessions::list))
        .route("/_sim/calls/{id}/{event}", post(sessions::platform_event))
}

pub fn host_router(state: SimState, host_dir: &std::path::Path) -> Router {
    Router::new()
        .merge(scenario_routes())
        .merge(desktop::routes())
        .route("/config.js", get(host_config))
        .fallback_service(ServeDir::new(host_dir))
        .with_state(state)
}

async fn record(State(state): State<SimState>, request: Request, next: Next) -> Response {
    let method = request.method().to_string();
    let path = request.uri().path().to_owned();
    let response = next.run(request).await;
    if !path.starts_with("/_sim/") {
        state
            .recorder
            .record(&method, &path, response.status().as_u16());
    }
    response
}

async fn healthz(State(state): State<SimState>) -> Json<serde_json::Value> {
    Json(json!({
        "status": "ok",
        "version": VERSION,
        "uptime_ms": state.started.elapsed().as_millis() as u64,
    }))
}

async fn sim_state(State(state): State<SimState>) -> Json<serde_json::Value> {
    let snapshot = state.recorder.snapshot();
    let ccai = serde_json::to_value(&*state.ccai.data()).unwrap_or_default();
    Json(json!({
        "requests": snapshot.requests,
        "dropped": snapshot.dropped,
        "ccai": ccai,
        "webhooks": state.ccai.webhooks.deliveries(),
        "faults": state.ccai.faults.snapshot(),
        "event_faults": state.ccai.webhooks.faults(),
        "kustomer": state.kustomer.snapshot(),
    }))
}

async fn sim_reset(State(state): State<SimState>) -> StatusCode {
    state.recorder.clear();
    state.ccai.data().reset();
    state.ccai.webhooks.clear();
    state.ccai.faults.reset();
    state
        .ccai
        .webhooks
        .set_faults(webhooks::DeliveryFaults::default());
    state.kustomer.reset();
    StatusCode::NO_CONTENT
}

/// `POST /_sim/faults`: faults on the CCAI routes until the next one or `/_sim/reset`.
async fn set_faults(
    State(state): State<SimState>,
    body: Result<Json<faults::FaultSpec>, axum::extract::rejection::JsonRejection>,
) -> Response {
    let spec = match body {
        Ok(Json(spec)) => spec,
        Err(rejection) => {
            return (
                StatusCode::BAD_REQUEST,
                Json(json!({"message": rejection.body_text()})),
            )
                .into_response()
        }
    };
    match faults::FaultState::from_spec(&spec) {
        Ok(faults) => {
            state.ccai.webhooks.set_faults(webhooks::DeliveryFaults {
                repeat: spec.repeat_events,
                reverse: spec.reverse_events,
            });
            state.ccai.faults.set(faults.clone());
            Json(faults).into_response()
        }
        Err(message) => {
            (StatusCode::BAD_REQUEST, Json(json!({ "message": message }))).into_response()
        }
    }
}

/// `GET /_sim/recordings/{id}.wav`: a voicemail recording (one second of silence), so the
/// URL a voicemail webhook carries can be fetched.
async fn recording(
    State(state): State<SimState>,
    axum::extract::Path(name): axum::extract::Path<String>,
) -> Response {
    let known = name
        .strip_suffix(".wav")
        .and_then(|id| id.parse::<i64>().ok())
        .is_some_and(|id| {
            state
                .ccai
                .data()
                .sessions
                .iter()
                .any(|s| s.id == id && s.recording_url.is_some())
        });
    if !known {
        return StatusCode::NOT_FOUND.into_response();
    }
    (
        [(header::CONTENT_TYPE, HeaderValue::from_static("audio/wav"))],
        silent_wav(8000),
    )
        .into_response()
}

/// `samples` of silence, 8 kHz, 8-bit mono PCM.
fn silent_wav(samples: u32) -> Vec<u8> {
    let mut wav = Vec::with_capacity(44 + samples as usize);
    wav.extend_from_slice(b"RIFF");
    wav.extend_from_slice(&(36 + samples).to_le_bytes());
    wav.extend_from_slice(b"WAVEfmt ");
    wav.extend_from_slice(&16u32.to_le_bytes());
    wav.extend_from_slice(&1u16.to_le_bytes()); // PCM
    wav.extend_from_slice(&1u16.to_le_bytes()); // mono
    wav.extend_from_slice(&8000u32.to_le_bytes());
    wav.extend_from_slice(&8000u32.to_le_bytes()); // bytes per second
    wav.extend_from_slice(&1u16.to_le_bytes()); // block align
    wav.extend_from_slice(&8u16.to_le_bytes());
    wav.extend_from_slice(b"data");
    wav.extend_from_slice(&samples.to_le_bytes());
    wav.resize(44 + samples as usize, 0x80);
    wav
}

/// A page for a frame of another origin than the host's and the adapter's, which tries to drive
/// the adapter (the host emulator loads it with `?hostile=1`). Its COEP and CORP headers let it
/// load inside pages that require them (the browser-test runner's page is cross-origin isolated).
async fn hostile_page() -> Response {
    (
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/html; charset=utf-8"),
            ),
            (
                header::HeaderName::from_static("cross-origin-embedder-policy"),
                HeaderValue::from_static("require-corp"),
            ),
            (
                header::HeaderName::from_static("cross-origin-resource-policy"),
                HeaderValue::from_static("cross-origin"),
            ),
        ],
        include_str!("../../../host/hostile.html"),
    )
        .into_response()
}

async fn host_config(State(state): State<SimState>) -> Response {
    // serde_json escapes the values, so a hostile one cannot break out of its string literal.
    let body = format!(
        "window.HOST_CONFIG = {};\n",
        json!({ "adapterUrl": state.adapter_url, "simulatorUrl": state.api_url })
    );
    (
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/javascript; charset=utf-8"),
            ),
            (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
        ],
        body,
    )
        .into_response()
}
