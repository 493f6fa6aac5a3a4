//! Webhooks are answered at once while the Kustomer org's budget is exhausted: the CRM sync
//! waits for Kustomer, the platform's deliveries do not. The figure (p50, p99) is printed; the
//! test fails only when an answer waits as long as the budget would make it (a functional
//! deadline, not a performance target: the benchmark is `scripts/bench/webhooks.sh`).

use std::time::{Duration, Instant};

use reqwest::{Client, StatusCode};
use serde_json::{json, Value};

mod support;

use support::{HOOK_PASSWORD, HOOK_USER};

/// Calls driven, each through its six documented events, one POST per event.
const CALLS: usize = 50;
/// Far below the minute a request waits for an exhausted budget.
const DEADLINE: Duration = Duration::from_secs(2);

fn events(call: usize) -> Vec<Value> {
    adapter_core::ccai_events::examples::lifecycle()
        .into_iter()
        .enumerate()
        .map(|(i, mut event)| {
            event["event_id"] = json!(format!("{call:08x}-0000-4000-8000-{i:012x}"));
            event["item"]["call_id"] = json!(format!("latency-{call}"));
            event["item"]["dn"] = json!(format!("+1415558{call:04}"));
            event
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhooks_are_answered_at_once_while_the_kustomer_budget_is_exhausted() {
    let running = support::Start {
        webhooks: true,
        ..support::Start::new("webhook-latency")
    }
    .run(|config| {
        config.crm.crm_sync = true;
        // One request a minute: the CRM sync spends it at once and then waits.
        config.crm.kustomer_rate_limit = 1;
    })
    .await;
    let gateway = format!("http://{}", running.gateway);
    let http = Client::new();
    let mut took = Vec::new();
    for call in 0..CALLS {
        for event in events(call) {
            let started = Instant::now();
            let response = http
                .post(format!("{gateway}/webhooks/ccai/calls"))
                .basic_auth(HOOK_USER, Some(HOOK_PASSWORD))
                .json(&json!({"count": 1, "events": [event]}))
                .send()
                .await
                .expect("the webhook is answered");
            let elapsed = started.elapsed();
            assert_eq!(response.status(), StatusCode::OK);
            let body: Value = response.json().await.unwrap_or(Value::Null);
            assert_eq!(body["accepted"], 1, "{body}");
            assert!(
                elapsed < DEADLINE,
                "a webhook waited {elapsed:?}: it must not wait for Kustomer"
            );
            took.push(elapsed);
        }
    }
    took.sort_unstable();
    let at = |p: usize| took[(took.len() * p / 100).min(took.len() - 1)];
    println!(
        "webhook answers with the Kustomer budget exhausted: {} POSTs, p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
        took.len(),
        at(50).as_secs_f64() * 1e3,
        at(99).as_secs_f64() * 1e3,
        took[took.len() - 1].as_secs_f64() * 1e3
    );
}
