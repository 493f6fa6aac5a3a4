//! Loopback stand-ins for the two SaaS APIs the gateway talks to (like stripe-mock is for
//! Stripe), and the host emulator: a page standing in for the Kustomer agent desktop.
//!
//! Two listeners: the API (`--listen`) and the host emulator (`--host-listen`), which must be
//! another origin than the widget so the iframe is cross-origin as in production.

pub use adapter_server_common::{init_tracing, shutdown_signal};

pub mod ccai;
pub mod config;
pub mod recorder;

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
    routing::{get, post},
    Json, Router,
};
use serde_json::json;
use tokio::net::TcpListener;
use tower_http::services::ServeDir;

use crate::{ccai::Ccai, config::Config, recorder::Recorder};

pub const VERSION: &str = env!("CARGO_PKG_VERSION");

#[derive(Clone, Debug)]
pub struct SimState {
    pub recorder: Recorder,
    pub started: Instant,
    pub adapter_url: String,
    /// The simulated APIs' own base URL, for the host emulator's hostile frame.
    pub api_url: String,
    pub ccai: Ccai,
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
        let simulator = Simulator {
            api,
            host,
            state: SimState {
                recorder: Recorder::default(),
                started: Instant::now(),
                adapter_url: config.adapter_url,
                api_url,
                ccai: Ccai::new(config.ccai_subdomain, config.ccai_token),
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
        .route(
            "/apps/api/v1/agent_statuses",
            post(ccai::set_agent_statuses),
        )
        .route("/apps/api/v1/calls", post(ccai::place_call))
        // Only the CCAI routes: a layer would also wrap the fallback, and a 404 would become 401.
        .route_layer(middleware::from_fn_with_state(
            state.ccai.clone(),
            ccai::guard,
        ));
    Router::new()
        .merge(ccai_api)
        .route("/_sim/ccai/agents/{id}/status", post(ccai::force_status))
        .route(
            "/_sim/ccai/outbound_numbers",
            post(ccai::set_outbound_numbers),
        )
        .route("/healthz", get(healthz))
        .route("/_sim/state", get(sim_state))
        .route("/_sim/reset", post(sim_reset))
        .route("/_sim/hostile.html", get(hostile_page))
        .layer(middleware::from_fn_with_state(state.clone(), record))
        .with_state(state)
}

/// The host emulator: static files, plus `config.js` telling the page where the adapter is.
pub fn host_router(state: SimState, host_dir: &std::path::Path) -> Router {
    Router::new()
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
    }))
}

async fn sim_reset(State(state): State<SimState>) -> StatusCode {
    state.recorder.clear();
    *state.ccai.data() = ccai::CcaiData::default();
    StatusCode::NO_CONTENT
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
