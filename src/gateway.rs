//! The client of the adapter gateway: its address, one `request()` of the agent API (timeout,
//! abort, refusals), the health probe. The agent's event stream is `agent/stream.rs`. The
//! widget never talks to the CCAI Platform or to Kustomer's API directly: their credentials
//! live in the gateway only.

use std::{
    future::Future,
    pin::Pin,
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc,
    },
    time::Duration,
};

use adapter_core::{
    backoff::Backoff,
    connection::{Connection, ConnectionState},
    health::Health,
    json_fields::FromJson,
};
use leptos::prelude::*;

/// `<meta name="ccai-gateway" content="https://gateway.example.com">` in `index.html` points the
/// widget at a gateway on another origin; without it the gateway is the page's own origin.
pub const GATEWAY_META: &str = "ccai-gateway";

/// Why a gateway request failed. Text only, so it is `Clone` and can live in signals.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum GatewayError {
    #[error("the gateway address {0:?} is not an http(s) URL")]
    BadUrl(String),
    #[error("network error: {0}")]
    Network(String),
    #[error("no answer within {0} ms")]
    Timeout(u32),
    #[error("the gateway answered HTTP {0}")]
    Status(u16),
    #[error("the gateway's answer could not be read: {0}")]
    Decode(String),
    #[error("the gateway is degraded: database {0}")]
    Degraded(String),
}

/// The gateway's base URL (no trailing slash) from the configured value, else the page origin.
pub fn resolve_base_url(
    configured: Option<&str>,
    page_origin: &str,
) -> Result<String, GatewayError> {
    let chosen = configured
        .map(str::trim)
        .filter(|c| !c.is_empty())
        .unwrap_or(page_origin);
    let base = chosen.trim_end_matches('/');
    let scheme_ok = base.starts_with("https://") || base.starts_with("http://");
    let has_host = base
        .split_once("://")
        .is_some_and(|(_, rest)| !rest.is_empty());
    if scheme_ok && has_host {
        Ok(base.to_owned())
    } else {
        Err(GatewayError::BadUrl(chosen.to_owned()))
    }
}

/// The gateway's base URL for this page.
pub fn base_url() -> Result<String, GatewayError> {
    let window = web_sys::window().ok_or_else(|| GatewayError::BadUrl("(no window)".into()))?;
    let origin = window.location().origin().unwrap_or_default();
    let configured = window
        .document()
        .and_then(|d| {
            d.query_selector(&format!("meta[name='{GATEWAY_META}']"))
                .ok()
                .flatten()
        })
        .and_then(|meta| meta.get_attribute("content"));
    resolve_base_url(configured.as_deref(), &origin)
}

/// An HTTP method of the gateway's APIs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Method {
    Get,
    Post,
    Put,
    Delete,
}

impl Method {
    fn as_str(self) -> &'static str {
        match self {
            Method::Get => "GET",
            Method::Post => "POST",
            Method::Put => "PUT",
            Method::Delete => "DELETE",
        }
    }
}

/// How long one agent API request may take.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(8);

/// A refusal of the agent API (`{"error": {"code", "message"}}`), or why there was no answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ApiFailure {
    /// HTTP status; 0 when no answer came.
    pub status: u16,
    pub code: String,
    /// The gateway's sentence (English), or what went wrong on the way.
    pub message: String,
}

impl ApiFailure {
    pub fn transport(error: GatewayError) -> Self {
        ApiFailure {
            status: 0,
            code: "unreachable".into(),
            message: error.to_string(),
        }
    }
}

/// One `fetch`, aborted after `timeout`: the status and the body's text.
async fn fetch_text(
    url: &str,
    method: Method,
    token: Option<&str>,
    body: Option<&str>,
    timeout: Duration,
) -> Result<(u16, String), GatewayError> {
    use wasm_bindgen::JsCast;
    use wasm_bindgen_futures::JsFuture;
    let network = |e: wasm_bindgen::JsValue| GatewayError::Network(format!("{e:?}"));
    let timeout_ms = u32::try_from(timeout.as_millis()).unwrap_or(u32::MAX);
    let window = web_sys::window().ok_or_else(|| GatewayError::Network("no window".into()))?;
    let controller = web_sys::AbortController::new().map_err(network)?;
    let signal = controller.signal();
    let init = web_sys::RequestInit::new();
    init.set_method(method.as_str());
    init.set_signal(Some(&signal));
    let headers = web_sys::Headers::new().map_err(network)?;
    if let Some(token) = token {
        headers
            .set("Authorization", &format!("Bearer {token}"))
            .map_err(network)?;
    }
    if let Some(body) = body {
        headers
            .set("Content-Type", "application/json")
            .map_err(network)?;
        init.set_body(&wasm_bindgen::JsValue::from_str(body));
    }
    init.set_headers(&headers);
    // Dropping the timer (when the request finishes first) cancels the abort.
    let _timer = gloo_timers::callback::Timeout::new(timeout_ms, move || controller.abort());
    let failed = |e: wasm_bindgen::JsValue| {
        if signal.aborted() {
            GatewayError::Timeout(timeout_ms)
        } else {
            network(e)
        }
    };
    let response: web_sys::Response = JsFuture::from(window.fetch_with_str_and_init(url, &init))
        .await
        .map_err(failed)?
        .unchecked_into();
    let text = match response.text() {
        Ok(promise) => JsFuture::from(promise)
            .await
            .map_err(failed)?
            .as_string()
            .unwrap_or_default(),
        Err(_) => String::new(),
    };
    Ok((response.status(), text))
}

/// One agent API request (`{base}/api/v1{path}`), aborted after [`REQUEST_TIMEOUT`]: the body
/// of a 2xx answer, else the refusal. A boxed future: its code is in the wasm once, not in each
/// caller's.
pub fn request<'a>(
    base: &'a str,
    method: Method,
    path: &'a str,
    token: Option<&'a str>,
    body: Option<&'a str>,
) -> Pin<Box<dyn Future<Output = Result<String, ApiFailure>> + 'a>> {
    Box::pin(request_inner(base, method, path, token, body))
}

async fn request_inner(
    base: &str,
    method: Method,
    path: &str,
    token: Option<&str>,
    body: Option<&str>,
) -> Result<String, ApiFailure> {
    let (status, text) = fetch_text(
        &format!("{base}/api/v1{path}"),
        method,
        token,
        body,
        REQUEST_TIMEOUT,
    )
    .await
    .map_err(ApiFailure::transport)?;
    if (200..300).contains(&status) {
        return Ok(text);
    }
    Err(
        match adapter_core::json_fields::from_str::<adapter_core::agent_api::ErrorBody>(&text) {
            Ok(body) => ApiFailure {
                status,
                code: body.error.code,
                message: body.error.message,
            },
            Err(_) => ApiFailure {
                status,
                code: "http_error".into(),
                message: GatewayError::Status(status).to_string(),
            },
        },
    )
}

/// Reads an answer's JSON as `T` (field by field: see `adapter_core::json_fields`).
pub fn decode<T: FromJson>(text: String) -> Result<T, ApiFailure> {
    adapter_core::json_fields::from_str(&text)
        .map_err(|e| ApiFailure::transport(GatewayError::Decode(e)))
}

/// `value` as a request body, by its derived serialiser (the settings page; the widget writes its
/// requests with `adapter_core::json_text`, far less code in its wasm).
pub fn body_of<T: serde::Serialize>(value: &T) -> Option<String> {
    serde_json::to_string(value).ok()
}

/// `GET {base}/healthz`, aborted after `timeout`.
pub async fn fetch_health(base: &str, timeout: Duration) -> Result<Health, GatewayError> {
    let (status, text) =
        fetch_text(&format!("{base}/healthz"), Method::Get, None, None, timeout).await?;
    if status != 200 && status != 503 {
        return Err(GatewayError::Status(status));
    }
    let health: Health =
        adapter_core::json_fields::from_str(&text).map_err(GatewayError::Decode)?;
    if health.is_ok() {
        Ok(health)
    } else {
        Err(GatewayError::Degraded(health.database))
    }
}

/// Options of [`use_gateway_connection`].
#[derive(Clone, Debug)]
pub struct UseGatewayConnectionOptions {
    /// The gateway's base URL; `None` resolves it from the page ([`base_url`]).
    pub base_url: Option<String>,
    pub backoff: Backoff,
    /// Pause between probes while connected.
    pub healthy_interval: Duration,
    /// How long one probe may take.
    pub timeout: Duration,
}

impl Default for UseGatewayConnectionOptions {
    fn default() -> Self {
        UseGatewayConnectionOptions {
            base_url: None,
            backoff: Backoff::default(),
            healthy_interval: Duration::from_secs(5),
            timeout: Duration::from_secs(4),
        }
    }
}

/// What [`use_gateway_connection`] returns.
#[derive(Clone, Copy, Debug)]
pub struct UseGatewayConnectionReturn {
    pub state: Signal<ConnectionState>,
}

/// Probes the gateway's health for as long as the calling component lives: every
/// `healthy_interval` while it answers, with backoff while it does not.
pub fn use_gateway_connection(options: UseGatewayConnectionOptions) -> UseGatewayConnectionReturn {
    let mut connection = Connection::new(options.backoff, options.healthy_interval);
    let state = RwSignal::new(connection.state().clone());
    let stopped = Arc::new(AtomicBool::new(false));
    on_cleanup({
        let stopped = Arc::clone(&stopped);
        move || stopped.store(true, Ordering::Relaxed)
    });
    let base = match options.base_url {
        Some(url) => resolve_base_url(Some(&url), ""),
        None => base_url(),
    };
    leptos::task::spawn_local(async move {
        while !stopped.load(Ordering::Relaxed) {
            connection.probe_started();
            let _ = state.try_set(connection.state().clone());
            let outcome = match &base {
                Ok(base) => fetch_health(base, options.timeout).await,
                Err(error) => Err(error.clone()),
            };
            let wait = match outcome {
                Ok(_) => connection.probe_succeeded(),
                Err(error) => {
                    leptos::logging::warn!("gateway health probe failed: {error}");
                    connection.probe_failed(error.to_string(), js_sys::Math::random())
                }
            };
            if stopped.load(Ordering::Relaxed)
                || state.try_set(connection.state().clone()).is_some()
            {
                break;
            }
            let wait_ms = u32::try_from(wait.as_millis()).unwrap_or(u32::MAX);
            gloo_timers::future::TimeoutFuture::new(wait_ms).await;
        }
    });
    UseGatewayConnectionReturn {
        state: state.into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base_url_resolution() {
        let origin = "https://adapter.example.com";
        let cases: &[(Option<&str>, Result<&str, ()>)] = &[
            (None, Ok("https://adapter.example.com")),
            (Some(""), Ok("https://adapter.example.com")),
            (Some("   "), Ok("https://adapter.example.com")),
            (
                Some("https://gw.example.com/"),
                Ok("https://gw.example.com"),
            ),
            (Some(" http://127.0.0.1:8700 "), Ok("http://127.0.0.1:8700")),
            (
                Some("https://gw.example.com/base/"),
                Ok("https://gw.example.com/base"),
            ),
            (Some("javascript:alert(1)"), Err(())),
            (Some("ftp://gw.example.com"), Err(())),
            (Some("https://"), Err(())),
            (Some("gw.example.com"), Err(())),
        ];
        for (configured, want) in cases {
            let got = resolve_base_url(*configured, origin).map_err(|_| ());
            assert_eq!(got.as_deref(), want.as_deref(), "configured {configured:?}");
        }
        assert!(
            resolve_base_url(None, "null").is_err(),
            "an opaque origin is refused"
        );
    }
}
