//! The HTTP layer, the only part of the gateway that knows axum: the router (each area's
//! `routes()` merged here), its middleware (request ids, tracing, CORS, body limit, security
//! headers), the error answers, the extractors, and handlers that parse a request, call one
//! domain function and shape its answer.
//!
//! - [`agent`]: the agent API; [`admin`]: the admins' endpoints; [`stream`]: the event stream;
//!   [`webhooks`]: the CCAI Platform's webhooks; `/healthz` and the widget's pages (with their
//!   Content-Security-Policy) here.
//! - [`error`]: how an [`crate::error::Error`] goes out, and the JSON extractor;
//!   [`auth`]: `SignedIn` and `Admin`.

pub mod admin;
pub mod agent;
pub mod auth;
pub mod error;
pub mod stream;
pub mod webhooks;

use std::sync::{
    atomic::{AtomicU64, Ordering},
    Arc,
};

use adapter_core::health::{Health, HealthStatus};
use axum::{
    extract::{DefaultBodyLimit, State},
    http::{header, HeaderName, HeaderValue, Method, Request, StatusCode},
    response::{IntoResponse, Response},
    routing::get,
    Json, Router,
};
use tower_http::{
    cors::{AllowOrigin, CorsLayer},
    request_id::{MakeRequestId, PropagateRequestIdLayer, RequestId, SetRequestIdLayer},
    services::ServeDir,
    set_header::{SetResponseHeader, SetResponseHeaderLayer},
    trace::TraceLayer,
};

use crate::{AppState, VERSION};

/// Largest request body the gateway reads.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

static REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

pub fn router(state: AppState) -> Router {
    let cors = cors(&state.config.allowed_origins);
    let widget_dir = state.config.widget_dir.clone();
    let api = Router::new()
        .merge(agent::routes())
        .merge(admin::routes())
        .merge(stream::routes())
        .fallback(error::not_found)
        // An agent's answers are for that agent's browser only: no cache keeps them.
        .layer(SetResponseHeaderLayer::if_not_present(
            header::CACHE_CONTROL,
            HeaderValue::from_static("no-store"),
        ));
    let static_csp = HeaderValue::from_str(&crate::widget::policy(
        &[],
        &state.config.kustomer_origins,
        None,
    ))
    .ok();
    let mut app = Router::new()
        .route("/healthz", get(healthz))
        .nest("/api/v1", api)
        .merge(webhooks::routes())
        .route("/metrics", get(metrics));
    if widget_dir.is_some() {
        // The pages themselves, with the allowed origins written in and their own CSP.
        for page in ["/", "/index.html", "/settings/", "/settings/index.html"] {
            app = app.route(page, get(widget_page));
        }
    }
    let mut app = app
        .route_layer(axum::middleware::from_fn(track_http))
        .with_state(state);
    if let Some(dir) = widget_dir {
        // Everything else of the build (scripts, wasm, styles) with the same policy and no
        // inline script allowed, for any page a build might add.
        app = app.fallback_service(SetResponseHeader::overriding(
            ServeDir::new(dir),
            header::CONTENT_SECURITY_POLICY,
            static_csp,
        ));
    }
    // Enforced by the body extractors, so an oversized body gets the API's JSON error.
    app.layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(cors)
        .layer(SetResponseHeaderLayer::overriding(
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        ))
        .layer(SetResponseHeaderLayer::overriding(
            header::REFERRER_POLICY,
            HeaderValue::from_static("no-referrer"),
        ))
        .layer(PropagateRequestIdLayer::new(REQUEST_ID.clone()))
        .layer(TraceLayer::new_for_http().make_span_with(|request: &Request<_>| {
            let id = request
                .headers()
                .get(&REQUEST_ID)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("-");
            tracing::info_span!("request", id, method = %request.method(), path = %request.uri().path())
        }))
        .layer(SetRequestIdLayer::new(REQUEST_ID.clone(), RequestCounter::default()))
        // Outermost: a caller's own request id never reaches the logs or the answer (it could
        // forge log lines or be made to collide); every request gets the gateway's.
        .layer(axum::middleware::map_request(drop_request_id))
}

async fn drop_request_id(mut request: Request<axum::body::Body>) -> Request<axum::body::Body> {
    request.headers_mut().remove(&REQUEST_ID);
    request
}

/// `GET /` and `/settings/` (and their `index.html`): the widget's page from `--widget-dir`, read
/// now, with the allowed Kustomer origins written in and its Content-Security-Policy (see
/// [`crate::widget`]).
async fn widget_page(
    State(state): State<AppState>,
    uri: axum::http::Uri,
    headers: axum::http::HeaderMap,
) -> Response {
    let Some(dir) = state.config.widget_dir.as_ref() else {
        return error::not_found().await.into_response();
    };
    let file = if uri.path().starts_with("/settings/") {
        dir.join("settings").join("index.html")
    } else {
        dir.join("index.html")
    };
    let html = match tokio::fs::read_to_string(&file).await {
        Ok(html) => html,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
            return (StatusCode::NOT_FOUND, "The widget is not built here.").into_response();
        }
        Err(error) => {
            tracing::warn!(%error, file = %file.display(), "the widget's page cannot be read");
            return (
                StatusCode::INTERNAL_SERVER_ERROR,
                "The widget's page cannot be read.",
            )
                .into_response();
        }
    };
    let host = headers.get(header::HOST).and_then(|v| v.to_str().ok());
    let page = crate::widget::prepare(&html, &state.config.kustomer_origins, host);
    let Ok(csp) = HeaderValue::from_str(&page.csp) else {
        // Every part of the policy is checked to be a plain token; never served without one.
        return (
            StatusCode::INTERNAL_SERVER_ERROR,
            "No valid policy for the page.",
        )
            .into_response();
    };
    (
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/html; charset=utf-8"),
            ),
            (header::CONTENT_SECURITY_POLICY, csp),
            // Small, and must match the scripts of the current build: asked again each time.
            (header::CACHE_CONTROL, HeaderValue::from_static("no-cache")),
        ],
        page.html,
    )
        .into_response()
}

/// CORS for a widget served from another origin. Origins that do not parse as header values
/// are logged and left out rather than allowing everything.
fn cors(origins: &[String]) -> CorsLayer {
    let allowed: Vec<HeaderValue> = origins
        .iter()
        .filter_map(|origin| match HeaderValue::from_str(origin.trim()) {
            Ok(value) => Some(value),
            Err(_) => {
                tracing::warn!(
                    origin,
                    "ignoring an allowed origin that is not a valid header value"
                );
                None
            }
        })
        .collect();
    CorsLayer::new()
        .allow_origin(AllowOrigin::list(allowed))
        .allow_methods([Method::GET, Method::POST, Method::PUT, Method::DELETE])
        .allow_headers([header::AUTHORIZATION, header::CONTENT_TYPE])
}

/// Request ids `1`, `2`, ... per process; enough to follow one request through the logs.
#[derive(Clone, Default)]
struct RequestCounter(Arc<AtomicU64>);

impl MakeRequestId for RequestCounter {
    fn make_request_id<B>(&mut self, _: &Request<B>) -> Option<RequestId> {
        let n = self.0.fetch_add(1, Ordering::Relaxed) + 1;
        HeaderValue::from_str(&n.to_string())
            .ok()
            .map(RequestId::new)
    }
}

/// `GET /healthz`: 200 when the gateway and its database answer, 503 when the database does
/// not. `kustomer` says whether Kustomer work is paused (the outbox's circuit breaker is open:
/// `"status": "paused"` with why and since when). That leaves `status` "ok" and the answer 200:
/// agents' calls and statuses do not depend on it, and the widget reads anything but "ok" as
/// the gateway being unreachable.
async fn healthz(State(state): State<AppState>) -> Response {
    let (code, health) = match state.store.ping().await {
        Ok(()) => (
            StatusCode::OK,
            Health {
                status: HealthStatus::Ok,
                version: VERSION.into(),
                database: "ok".into(),
            },
        ),
        Err(error) => {
            // The details (paths, driver messages) go to the log, not to whoever asks.
            tracing::warn!(%error, "health check: database is failing");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                Health {
                    status: HealthStatus::Degraded,
                    version: VERSION.into(),
                    database: "unavailable".into(),
                },
            )
        }
    };
    let kustomer = match state.crm.kustomer_health().await {
        Ok(kustomer) => kustomer,
        Err(error) => {
            tracing::warn!(%error, "health check: the Kustomer sync's state cannot be read");
            serde_json::json!({"status": "unknown"})
        }
    };
    (
        code,
        [(header::CACHE_CONTROL, HeaderValue::from_static("no-store"))],
        Json(HealthBody { health, kustomer }),
    )
        .into_response()
}

/// `GET /metrics`: Prometheus text format (see [`crate::telemetry`]), the outbox figures read
/// now.
async fn metrics(State(state): State<AppState>) -> Response {
    match state.crm.figures().await {
        Ok(figures) => figures.record(),
        // The other metrics are still worth having; the gauges keep their last values.
        Err(error) => tracing::warn!(%error, "outbox figures not read for /metrics"),
    }
    match crate::telemetry::render() {
        Ok(text) => (
            [
                (
                    header::CONTENT_TYPE,
                    HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
                ),
                (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
            ],
            text,
        )
            .into_response(),
        Err(why) => (StatusCode::SERVICE_UNAVAILABLE, why).into_response(),
    }
}

/// `/healthz`'s body: [`Health`] and the gateway's own fields.
#[derive(serde::Serialize)]
struct HealthBody {
    #[serde(flatten)]
    health: Health,
    kustomer: serde_json::Value,
}

/// Middleware: records each request's latency under its route's pattern (never the raw path,
/// whose ids would make a series per call).
async fn track_http(
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    let started = std::time::Instant::now();
    let method = request.method().as_str().to_owned();
    let route = request
        .extensions()
        .get::<axum::extract::MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |p| p.as_str().to_owned());
    let response = next.run(request).await;
    metrics::histogram!(
        "gateway_http_request_duration_seconds",
        "method" => method,
        "route" => route,
        "status" => response.status().as_u16().to_string(),
    )
    .record(started.elapsed().as_secs_f64());
    response
}
