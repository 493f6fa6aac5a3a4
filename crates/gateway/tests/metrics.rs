//! `GET /metrics` against a gateway on loopback: the outbox figures (pending, dead, oldest
//! age, the breaker), upstream requests and 429s per upstream, and request latency. One test
//! in this binary: the recorder is one per process.

use std::time::Duration;

use reqwest::{Client, Method, StatusCode};
use serde_json::{json, Value};

mod support;

const ADMIN: &str = "grace.hopper@example.com";

/// The value of the series `name` whose labels include `labels` (summed over the others).
fn value(text: &str, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    let mut found = None;
    for line in text.lines().filter(|l| !l.starts_with('#')) {
        let Some(rest) = line.strip_prefix(name) else {
            continue;
        };
        let (series_labels, number) = match rest.strip_prefix('{') {
            Some(rest) => match rest.split_once("} ") {
                Some((labels, number)) => (labels, number),
                None => continue,
            },
            None => match rest.strip_prefix(' ') {
                Some(number) => ("", number),
                None => continue,
            },
        };
        if labels
            .iter()
            .all(|(k, v)| series_labels.contains(&format!("{k}=\"{v}\"")))
        {
            let number: f64 = number.trim().parse().unwrap();
            found = Some(found.unwrap_or(0.0) + number);
        }
    }
    found
}

async fn scrape(gateway: &str) -> String {
    let response = reqwest::get(format!("{gateway}/metrics")).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let content_type = response.headers()["content-type"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(content_type.starts_with("text/plain"), "{content_type}");
    response.text().await.unwrap()
}

#[tokio::test]
async fn metrics_show_the_outbox_the_breaker_upstream_requests_429s_and_latency() {
    let running = support::Start {
        webhooks: true,
        ..support::Start::new("metrics")
    }
    .run(|config| {
        config.admin_emails = vec![ADMIN.into()];
        config.crm.crm_sync = true;
        config.status_refresh_seconds = 0;
    })
    .await;
    let gateway = format!("http://{}", running.gateway);
    let simulator = format!("http://{}", running.simulator);
    let (status, body) = support::call(
        Client::new()
            .post(format!("{gateway}/api/v1/sessions"))
            .json(&json!({"email": ADMIN, "kustomer_user": {"email": ADMIN}})),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let token = body["token"].as_str().unwrap().to_owned();
    let admin = |method: Method, path: &str, body: Option<Value>| {
        let mut request = Client::new()
            .request(method, format!("{gateway}{path}"))
            .bearer_auth(&token);
        if let Some(body) = body {
            request = request.json(&body);
        }
        support::call(request)
    };
    let until = |what: &'static str, done: fn(&Value) -> bool| {
        let admin = &admin;
        async move {
            let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
            loop {
                let (_, outbox) = admin(Method::GET, "/api/v1/crm/outbox", None).await;
                if done(&outbox) {
                    return outbox;
                }
                assert!(tokio::time::Instant::now() < deadline, "{what}: {outbox}");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    };
    let sim = |path: &'static str, body: Value| {
        let simulator = simulator.clone();
        async move {
            let response = Client::new()
                .post(format!("{simulator}{path}"))
                .json(&body)
                .send()
                .await
                .unwrap();
            assert!(response.status().is_success(), "{path}");
        }
    };

    // Kustomer limits the gateway three times; a mapped field it does not have makes one
    // dead letter.
    // One-second windows, so that waiting for Kustomer's reset stays short.
    sim(
        "/_sim/kustomer/limits",
        json!({"per_window": 1000, "window_ms": 1000}),
    )
    .await;
    sim("/_sim/kustomer/faults", json!({"rate_limited": 3})).await;
    let (status, body) = admin(
        Method::PUT,
        "/api/v1/crm/settings",
        Some(json!({"mapping": [{"sdk_key": "order", "field": "orderIdStr"}]})),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, chat) = support::call(
        Client::new()
            .post(format!("{simulator}/_sim/scenarios"))
            .json(&json!({"kind": "chat", "session": {"origin": "mobile_sdk",
                "end_user": {"identifier": "app-user-7", "name": "Jean"},
                "custom_data": {"order": {"label": "Order", "value": "A-17", "type": "string"}}}})),
    )
    .await;
    assert!(status.is_success(), "{chat}");
    until("one dead letter", |o| o["dead"] == 1 && o["pending"] == 0).await;

    let text = scrape(&gateway).await;
    assert_eq!(
        value(&text, "gateway_crm_outbox_dead", &[]),
        Some(1.0),
        "{text}"
    );
    assert_eq!(value(&text, "gateway_crm_outbox_pending", &[]), Some(0.0));
    assert_eq!(
        value(&text, "gateway_kustomer_breaker_open", &[]),
        Some(0.0)
    );
    assert_eq!(
        value(&text, "gateway_crm_outbox_oldest_pending_age_seconds", &[]),
        Some(0.0)
    );
    assert_eq!(
        value(
            &text,
            "gateway_upstream_rate_limited_total",
            &[("upstream", "kustomer")]
        ),
        Some(3.0),
        "{text}"
    );
    let kustomer_ok = value(
        &text,
        "gateway_upstream_requests_total",
        &[("upstream", "kustomer"), ("outcome", "ok")],
    )
    .unwrap_or(0.0);
    assert!(
        kustomer_ok >= 3.0,
        "customer, conversation, message: {text}"
    );
    // The look-up that finds no customer yet (404) and the refused field (400).
    let client_errors = value(
        &text,
        "gateway_upstream_requests_total",
        &[("upstream", "kustomer"), ("outcome", "client_error")],
    )
    .unwrap_or(0.0);
    assert!(client_errors >= 2.0, "{text}");
    assert!(
        value(
            &text,
            "gateway_upstream_requests_total",
            &[("upstream", "ccai"), ("outcome", "ok")]
        )
        .unwrap_or(0.0)
            >= 1.0,
        "the agent directory at sign-in: {text}"
    );
    assert_eq!(
        value(
            &text,
            "gateway_crm_operations_total",
            &[("outcome", "dead")]
        ),
        Some(1.0)
    );
    // Latency per route pattern: the admin view was polled at least once.
    let polls = value(
        &text,
        "gateway_http_request_duration_seconds_count",
        &[
            ("method", "GET"),
            ("route", "/api/v1/crm/outbox"),
            ("status", "200"),
        ],
    )
    .unwrap_or(0.0);
    assert!(polls >= 1.0, "{text}");
    assert!(
        value(
            &text,
            "gateway_http_request_duration_seconds_bucket",
            &[("route", "/api/v1/crm/outbox"), ("le", "+Inf")]
        ) == Some(polls),
        "{text}"
    );
    assert!(
        value(
            &text,
            "gateway_http_request_duration_seconds_count",
            &[("route", "/webhooks/ccai/chats")]
        )
        .unwrap_or(0.0)
            >= 1.0,
        "the session events came in: {text}"
    );
    assert!(
        value(
            &text,
            "gateway_webhooks_received_total",
            &[("channel", "chat"), ("outcome", "accepted")]
        )
        .unwrap_or(0.0)
            >= 1.0,
        "the session events are counted: {text}"
    );

    // A refused key pauses the outbox: the breaker, the pending operation and its age show.
    sim("/_sim/kustomer/api-key", json!({"api_key": "rotated"})).await;
    let (status, chat) = support::call(
        Client::new()
            .post(format!("{simulator}/_sim/scenarios"))
            .json(&json!({"kind": "chat", "session": {"origin": "mobile_sdk",
                "end_user": {"identifier": "app-user-8", "name": "Jo"}}})),
    )
    .await;
    assert!(status.is_success(), "{chat}");
    until("paused", |o| o["kustomer"]["status"] == "paused").await;
    let text = scrape(&gateway).await;
    assert_eq!(
        value(&text, "gateway_kustomer_breaker_open", &[]),
        Some(1.0)
    );
    assert!(value(&text, "gateway_crm_outbox_pending", &[]).unwrap_or(0.0) >= 1.0);
    assert!(
        value(&text, "gateway_crm_outbox_oldest_pending_age_seconds", &[]).unwrap_or(0.0) > 0.0,
        "{text}"
    );
    assert!(
        value(
            &text,
            "gateway_upstream_requests_total",
            &[("upstream", "kustomer"), ("outcome", "client_error")]
        )
        .unwrap_or(0.0)
            > client_errors,
        "the 401: {text}"
    );
    sim(
        "/_sim/kustomer/api-key",
        json!({"api_key": "sim-kustomer-key"}),
    )
    .await;
    until("resumed", |o| {
        o["kustomer"]["status"] == "ok" && o["pending"] == 0 && o["inbox"] == 0
    })
    .await;
    let text = scrape(&gateway).await;
    assert_eq!(
        value(&text, "gateway_kustomer_breaker_open", &[]),
        Some(0.0)
    );
    assert_eq!(value(&text, "gateway_crm_outbox_pending", &[]), Some(0.0));
}
