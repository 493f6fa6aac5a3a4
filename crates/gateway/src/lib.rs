//! The adapter gateway: the only place that holds the CCAI tenant token and the Kustomer API
//! key. The widget talks to it over HTTP (and, later, one WebSocket).
//!
//! - [`ccai`]: the CCAI Platform client (tenant credentials, shared rate budget, coalescing).
//! - [`config`]: typed configuration from flags and environment.
//! - [`store`]: SQLite with migrations.
//! - [`http`]: the router, its middleware, and its handlers.

pub use adapter_server_common::{init_tracing, shutdown_signal};

pub mod ccai;
pub mod config;
pub mod http;
pub mod store;

use std::{future::Future, sync::Arc};

use tokio::net::TcpListener;

use crate::{config::Config, store::Store};

pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// What every handler can reach, shared by `Arc`.
#[derive(Clone, Debug)]
pub struct AppState {
    pub store: Store,
    pub config: Arc<Config>,
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
}

/// A gateway whose store is open and whose socket is bound, ready to serve.
pub struct Gateway {
    listener: TcpListener,
    state: AppState,
}

impl Gateway {
    pub async fn start(config: Config) -> Result<Gateway, GatewayError> {
        let store = Store::open(&config.data_dir).await?;
        let listener =
            TcpListener::bind(config.listen)
                .await
                .map_err(|source| GatewayError::Listen {
                    addr: config.listen,
                    source,
                })?;
        let local = listener.local_addr().map_err(GatewayError::Serve)?;
        let starts = store.record_start(VERSION, &local.to_string()).await?;
        tracing::info!(
            version = VERSION,
            data_dir = %config.data_dir.display(),
            widget_dir = ?config.widget_dir,
            starts,
            "gateway listening on http://{local}"
        );
        Ok(Gateway {
            listener,
            state: AppState {
                store,
                config: Arc::new(config),
            },
        })
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
        let app = http::router(self.state);
        let served = axum::serve(self.listener, app)
            .with_graceful_shutdown(shutdown)
            .await
            .map_err(GatewayError::Serve);
        store.close().await;
        tracing::info!("gateway stopped");
        served
    }
}
