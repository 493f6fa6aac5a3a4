//! Prometheus metrics: one process-wide recorder ([`recorder`], installed when the gateway
//! starts), so any module counts with one line, e.g.
//! `metrics::counter!("gateway_webhooks_received_total").increment(1)`, and `GET /metrics`
//! renders them in the text format ([`render`]). The outbox figures are read from the store at
//! each scrape ([`crate::crm::OutboxFigures::record`]), so every replica reports the shared
//! outbox as it is. Depends on nothing else of the gateway.
//!
//! What is measured (the table is in the README, "Metrics"):
//! - `gateway_webhooks_received_total{channel, outcome}` by [`crate::webhooks`], and
//!   `gateway_stream_sockets` (gauge) and `gateway_stream_refusals_total{why}` by
//!   [`crate::http`]'s stream;
//! - `gateway_http_request_duration_seconds{method, route, status}` (histogram), by
//!   [`crate::http`]'s `track_http`;
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
        "gateway_webhooks_received_total",
        "Session events received from the CCAI Platform, by channel (call, chat, extension) and outcome (accepted, duplicate, refused)."
    );
    describe_gauge!(
        "gateway_stream_sockets",
        "Agents' event streams (WebSockets) open on this replica."
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

/// The metrics in the Prometheus text format.
pub fn render() -> Result<String, String> {
    let handle = recorder().ok_or("no Prometheus recorder in this process")?;
    Ok(handle.render())
}
