//! Prometheus metrics: one process-wide recorder ([`recorder`], installed when the gateway
//! starts), so any module counts with one line, e.g.
//! `metrics::counter!("gateway_webhooks_received_total").increment(1)`, and `GET /metrics`
//! renders them in the text format ([`render`]). The outbox figures are read from the store at
//! each scrape, so every replica reports the shared outbox as it is.
//!
//! What is measured (the table is in the README, "Metrics"):
//! - `gateway_http_request_duration_seconds{method, route, status}` (histogram), by
//!   [`track_http`];
//! - `gateway_upstream_requests_total{upstream, outcome}` and
//!   `gateway_upstream_rate_limited_total{upstream}` for `ccai` and `kustomer`, by
//!   [`upstream_request`];
//! - `gateway_crm_outbox_pending`, `_held`, `_dead`, `_inbox`, `gateway_crm_outbox_oldest_pending_age_seconds`,
//!   `gateway_kustomer_breaker_open` (gauges, at each scrape), and
//!   `gateway_crm_operations_total{outcome}` (done, retried, held, dead), by the executor.

use std::{sync::OnceLock, time::Duration};

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

/// The request latency histogram's buckets, in seconds (5 ms to 10 s).
const LATENCY_BUCKETS: &[f64] = &[
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// How often histograms are drained into their buckets (the exporter's upkeep).
const UPKEEP_EVERY: Duration = Duration::from_secs(5);

static RECORDER: OnceLock<Option<PrometheusHandle>> = OnceLock::new();

/// The process-wide recorder's handle, installed on first use (`None` when another recorder
/// was installed first: then `/metrics` says so).
pub fn recorder() -> Option<&'static PrometheusHandle> {
    RECORDER
        .get_or_init(|| {
            let builder = PrometheusBuilder::new()
                .set_buckets_for_metric(
                    Matcher::Full("gateway_http_request_duration_seconds".into()),
                    LATENCY_BUCKETS,
                )
                .ok()?;
            match builder.install_recorder() {
                Ok(handle) => {
                    describe();
                    if let Ok(runtime) = tokio::runtime::Handle::try_current() {
                        let upkeep = handle.clone();
                        runtime.spawn(async move {
                            let mut tick = tokio::time::interval(UPKEEP_EVERY);
                            loop {
                                tick.tick().await;
                                upkeep.run_upkeep();
                            }
                        });
                    }
                    Some(handle)
                }
                Err(error) => {
                    tracing::error!(%error, "the Prometheus recorder could not be installed: /metrics is off");
                    None
                }
            }
        })
        .as_ref()
}

fn describe() {
    use metrics::{describe_counter, describe_gauge, describe_histogram, Unit};
    describe_histogram!(
        "gateway_http_request_duration_seconds",
        Unit::Seconds,
        "Time to answer an HTTP request, by method, route and status."
    );
    describe_counter!(
        "gateway_upstream_requests_total",
        "Requests sent to an upstream (ccai, kustomer), by outcome (ok, client_error, rate_limited, server_error, timeout, network)."
    );
    describe_counter!(
        "gateway_upstream_rate_limited_total",
        "Upstream answers 429 (the upstream limited the gateway), by upstream."
    );
    describe_gauge!(
        "gateway_crm_outbox_pending",
        "CRM outbox operations waiting to run."
    );
    describe_gauge!(
        "gateway_crm_outbox_held",
        "CRM outbox operations held behind a dead letter of their session."
    );
    describe_gauge!("gateway_crm_outbox_dead", "CRM outbox dead letters.");
    describe_gauge!(
        "gateway_crm_outbox_inbox",
        "Session events waiting to be planned into CRM operations."
    );
    describe_gauge!(
        "gateway_crm_outbox_oldest_pending_age_seconds",
        Unit::Seconds,
        "Age of the oldest pending CRM outbox operation (0 when none)."
    );
    describe_gauge!(
        "gateway_kustomer_breaker_open",
        "1 while Kustomer work is paused by the circuit breaker."
    );
    describe_counter!(
        "gateway_crm_operations_total",
        "Attempts of CRM outbox operations, by outcome (done, retried, held, dead)."
    );
}

/// Counts one request to `upstream` and its outcome: an HTTP status, or `None` when no answer
/// came (`timed_out` says whether for lack of time).
pub fn upstream_request(upstream: &'static str, status: Option<u16>, timed_out: bool) {
    let outcome = match status {
        Some(200..=399) => "ok",
        Some(429) => "rate_limited",
        Some(400..=499) => "client_error",
        Some(_) => "server_error",
        None if timed_out => "timeout",
        None => "network",
    };
    metrics::counter!("gateway_upstream_requests_total", "upstream" => upstream, "outcome" => outcome)
        .increment(1);
    if status == Some(429) {
        metrics::counter!("gateway_upstream_rate_limited_total", "upstream" => upstream)
            .increment(1);
    }
}

/// Sets the outbox gauges from `figures`.
pub fn outbox(figures: &crate::crm::OutboxFigures) {
    metrics::gauge!("gateway_crm_outbox_pending").set(figures.pending as f64);
    metrics::gauge!("gateway_crm_outbox_held").set(figures.held as f64);
    metrics::gauge!("gateway_crm_outbox_dead").set(figures.dead as f64);
    metrics::gauge!("gateway_crm_outbox_inbox").set(figures.inbox as f64);
    metrics::gauge!("gateway_crm_outbox_oldest_pending_age_seconds")
        .set(figures.oldest_pending_age_ms.unwrap_or(0) as f64 / 1000.0);
    metrics::gauge!("gateway_kustomer_breaker_open").set(if figures.breaker.open {
        1.0
    } else {
        0.0
    });
}

/// The metrics in the Prometheus text format, the outbox figures read now.
pub async fn render(crm: &crate::crm::CrmSync) -> Result<String, String> {
    let handle = recorder().ok_or("no Prometheus recorder in this process")?;
    match crm.figures().await {
        Ok(figures) => outbox(&figures),
        // The other metrics are still worth having; the gauges keep their last values.
        Err(error) => tracing::warn!(%error, "outbox figures not read for /metrics"),
    }
    Ok(handle.render())
}

/// Middleware: records each request's latency under its route's pattern (never the raw path,
/// whose ids would make a series per call).
pub async fn track_http(
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
