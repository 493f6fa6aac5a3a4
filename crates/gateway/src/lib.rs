//! The adapter gateway: the only place that holds the CCAI tenant token and the Kustomer API
//! key. The widget talks to it over HTTP and one WebSocket; the CCAI Platform sends it webhooks.
//!
//! In layers, each importing only those below it:
//!
//! - [`http`]: the only modules that know axum: router, middleware, extractors, error answers,
//!   and thin handlers.
//! - Domain: [`signin`] (who may become which agent), [`status`] (the agent's status as the
//!   gateway changes it), [`calls`] (click-to-call), [`controls`] (call controls the upstream
//!   offers), [`inheritance`] (Kustomer → CCAI status inheritance: settings, memory, write-back),
//!   [`agent_status`] (statuses from the lifecycle and the agent directory), [`screen_pop`] (a
//!   call's Kustomer conversation, for the adapter to open), [`webhooks`] (what
//!   the platform's session events do), [`crm`] (the CRM sync: rules, durable outbox also
//!   carrying the status write-backs, executor, circuit breaker),
//!   [`events`] (the per-agent event log, durable before it is seen), [`stream_limits`] (how
//!   many event streams an agent and a client address may hold), [`widget`] (the widget's
//!   pages as served: allowed Kustomer origins and Content-Security-Policy).
//! - Upstreams and the store: [`ccai`] (the CCAI Platform client), [`kustomer`] (the Kustomer
//!   REST client), [`files`] (downloads of the recordings and files the platform points to,
//!   from its hosts only), [`store`] (SQLite with migrations), [`sessions`] and [`agents`] (tokens, and
//!   who may sign in).
//! - Leaves that depend on nothing of the gateway: [`error`] (every error code), [`secret`],
//!   [`clock`] (the wall clock, and the outbox's, which tests move forward), [`config`] (flags
//!   and environment), [`telemetry`] (the Prometheus recorder), [`phone`], [`base64`], [`throttle`]
//!   (sign-in and webhook-credential throttles).
//!
//! This file is the entry point: it builds the parts, hands them to the HTTP layer as
//! [`AppState`], and serves.

pub use adapter_server_common::{init_tracing, shutdown_signal};

pub mod agent_status;
pub mod agents;
pub mod base64;
pub mod calls;
pub mod ccai;
pub mod clock;
pub mod config;
pub mod controls;
pub mod crm;
pub mod error;
pub mod events;
pub mod files;
pub mod http;
pub mod inheritance;
pub mod kustomer;
pub mod phone;
pub mod screen_pop;
pub mod secret;
pub mod sessions;
pub mod signin;
pub mod status;
pub mod store;
pub mod stream_limits;
pub mod telemetry;
pub mod throttle;
pub mod webhooks;
pub mod widget;

use std::{future::Future, sync::Arc};

use tokio::net::TcpListener;

use crate::{
    agents::AgentDirectory,
    ccai::{CcaiSettings, HttpCcai},
    config::Config,
    sessions::Sessions,
    store::Store,
};

pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// How often the status sender looks for room in the tenant's budget while changes wait (they
/// go out at once when it has room).
pub const STATUS_POLL: std::time::Duration = std::time::Duration::from_millis(10);

/// What every handler can reach, shared by `Arc`.
#[derive(Clone, Debug)]
pub struct AppState {
    pub store: Store,
    pub config: Arc<Config>,
    pub sessions: Sessions,
    pub directory: Arc<AgentDirectory>,
    pub ccai: Arc<HttpCcai>,
    /// Coalesces status changes into one CCAI call per status.
    pub status_setter: ccai::StatusSetter,
    pub events: events::EventHub,
    /// The call controls the CCAI upstream offers.
    pub capabilities: controls::Capabilities,
    /// Status inheritance settings and per-agent memory.
    pub inheritance: inheritance::Inheritance,
    /// The CRM sync (rules, outbox, Kustomer client).
    pub crm: crm::CrmSync,
    /// Reads agents' statuses from the directory when the lifecycle cannot tell them.
    pub agent_status: agent_status::AgentStatus,
    /// Sign-in and webhook-credential throttles.
    pub throttles: Arc<throttle::Throttles>,
    /// Open event streams per agent and per client address, against their caps.
    pub stream_limits: stream_limits::StreamLimits,
}

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum GatewayError {
    #[error(transparent)]
    Store(#[from] store::StoreError),
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        addr: std::net::SocketAddr,
        source: std::io::Error,
    },
    #[error("server error: {0}")]
    Serve(std::io::Error),
    #[error(transparent)]
    Directory(#[from] agents::DirectoryError),
    #[error("configure who may sign in: --agents-file, or --dev-sign-in for the demo")]
    NoSignIn,
    #[error("--dev-sign-in lets anyone sign in as any agent: it is refused unless the gateway listens on loopback (--listen 127.0.0.1:…) and the CCAI tenant is on loopback too (the simulator); use --agents-file")]
    DevSignInExposed,
    #[error("cannot set up the CCAI Platform client: {0}")]
    Ccai(#[from] ccai::CcaiError),
    #[error("cannot set up the CRM sync: {0}")]
    Crm(#[from] crm::CrmError),
}

/// A gateway whose store is open and whose socket is bound, ready to serve.
pub struct Gateway {
    listener: TcpListener,
    state: AppState,
}

impl Gateway {
    pub async fn start(config: Config) -> Result<Gateway, GatewayError> {
        // Installed first, so every module's `metrics::counter!` is recorded from the start.
        telemetry::recorder();
        let directory = match (&config.agents_file, config.dev_sign_in) {
            (Some(path), _) => AgentDirectory::from_file(path)?,
            (None, true) if !config::is_loopback(config.listen, &config.ccai_url) => {
                return Err(GatewayError::DevSignInExposed)
            }
            (None, true) => {
                tracing::warn!("development sign-in is on: anyone can sign in as any agent of the CCAI tenant, without a password");
                AgentDirectory::Development
            }
            (None, false) => return Err(GatewayError::NoSignIn),
        };
        let ccai = HttpCcai::new(CcaiSettings::new(
            &config.ccai_url,
            &config.ccai_subdomain,
            config.ccai_token.clone(),
        ))?;
        let ccai = Arc::new(ccai);
        let database = config
            .database_url
            .clone()
            .unwrap_or_else(|| store::DatabaseUrl::in_folder(&config.data_dir));
        let store = Store::connect(&database, config.store_sync).await?;
        if store.engine() == store::Engine::Postgres {
            // Other replicas may send to the same tenant: its budget is counted in the store.
            ccai.share_budget(store.pool());
        }
        let horizon = clock::now_ms() - webhooks::KEEP_DAYS * 86_400_000;
        match store.prune_webhooks(horizon).await? {
            0 => {}
            pruned => tracing::info!(
                pruned,
                "forgot webhook event ids older than {} days",
                webhooks::KEEP_DAYS
            ),
        }
        match (&config.call_webhook_user, &config.call_webhook_password) {
            (Some(_), Some(_)) => {
                tracing::info!("call session events are on: POST /webhooks/ccai/calls")
            }
            _ => tracing::warn!("call session events are off (no --call-webhook-user and --call-webhook-password): calls will not reach the agents' adapters"),
        }
        match (&config.chat_webhook_user, &config.chat_webhook_password) {
            (Some(_), Some(_)) => {
                tracing::info!("chat session events are on: POST /webhooks/ccai/chats")
            }
            _ => tracing::warn!("chat session events are off (no --chat-webhook-user and --chat-webhook-password): chats will not reach the agents' adapters"),
        }
        if config.ccai_extension {
            tracing::warn!("the simulator's extension is on (--ccai-extension): POST /webhooks/ccai/extension takes what the public CCAI APIs do not document");
        }
        let capabilities = controls::Capabilities::default();
        // Bounded: an unreachable upstream must not hold the gateway up; the refresh retries.
        if tokio::time::timeout(
            controls::STARTUP_DISCOVERY,
            capabilities.discover(ccai.as_ref()),
        )
        .await
        .is_err()
        {
            tracing::warn!("the CCAI upstream did not say which call controls it offers in time; offering none for now");
        }
        capabilities.spawn_refresh(
            Arc::clone(&ccai),
            std::time::Duration::from_secs(config.capabilities_refresh_seconds.max(1)),
        );
        let sessions = Sessions::new(
            store.pool(),
            sessions::Limits {
                ttl: std::time::Duration::from_secs(config.session_minutes.saturating_mul(60)),
                max_age: std::time::Duration::from_secs(
                    config.session_max_hours.saturating_mul(3600),
                ),
                per_agent: config.sessions_per_agent,
            },
        );
        let listener =
            TcpListener::bind(config.listen)
                .await
                .map_err(|source| GatewayError::Listen {
                    addr: config.listen,
                    source,
                })?;
        let local = listener.local_addr().map_err(GatewayError::Serve)?;
        let starts = store.record_start(VERSION, &local.to_string()).await?;
        let events = events::EventHub::open(store.pool()).await?;
        let inheritance = inheritance::Inheritance::load(&store.pool()).await?;
        let crm = crm::CrmSync::start(
            config.crm.clone(),
            store.pool(),
            Arc::clone(&ccai),
            config.ccai_extension,
            files::FilePolicy::new(&config.ccai_url, &config.crm.file_hosts),
        )
        .await?;
        let (agent_status, status_asks) = agent_status::AgentStatus::new();
        tracing::info!(
            version = VERSION,
            data_dir = %config.data_dir.display(),
            widget_dir = ?config.widget_dir,
            starts,
            "gateway listening on http://{local}"
        );
        screen_pop::spawn(crm.clone(), events.clone());
        let refresh_every = std::time::Duration::from_secs(config.status_refresh_seconds);
        let config_sign_in = (
            config.sign_in_per_minute,
            config.sign_in_failures_per_minute,
            config.webhook_failures_per_minute,
        );
        let config_caps = (config.max_streams_per_agent, config.max_streams_per_address);
        let state_pool = store.pool();
        let state = AppState {
            store,
            config: Arc::new(config),
            sessions,
            directory: Arc::new(directory),
            status_setter: ccai::StatusSetter::spawn(Arc::clone(&ccai), STATUS_POLL),
            events,
            ccai,
            capabilities,
            inheritance,
            crm,
            agent_status,
            throttles: Arc::new(throttle::Throttles {
                sign_in_by_address: throttle::Throttle::per_minute(config_sign_in.0),
                sign_in_failures_by_email: throttle::SharedFailures::new(
                    state_pool.clone(),
                    "sign_in",
                    config_sign_in.1,
                ),
                webhook_failures_by_address: throttle::Throttle::per_minute(config_sign_in.2),
            }),
            stream_limits: stream_limits::StreamLimits::new(config_caps.0, config_caps.1),
        };
        tokio::spawn(agent_status::AgentStatus::run(
            state.clone(),
            status_asks,
            refresh_every,
        ));
        Ok(Gateway { listener, state })
    }

    pub fn local_addr(&self) -> std::io::Result<std::net::SocketAddr> {
        self.listener.local_addr()
    }

    /// Serves until `shutdown` completes, then finishes in-flight requests and closes the store.
    pub async fn serve(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> Result<(), GatewayError> {
        let store = self.state.store.clone();
        let streams = self.state.events.clone();
        let app = http::router(self.state);
        // With each connection's peer address: the throttles and the event stream's caps count
        // by client address.
        let app = app.into_make_service_with_connect_info::<std::net::SocketAddr>();
        let served = axum::serve(self.listener, app)
            .with_graceful_shutdown(async move {
                shutdown.await;
                // Open streams would hold the shutdown until killed: close them first.
                streams.close_streams();
            })
            .await
            .map_err(GatewayError::Serve);
        // Every answered write is committed already: what is still in flight was never answered.
        store.close().await;
        tracing::info!("gateway stopped");
        served
    }
}
