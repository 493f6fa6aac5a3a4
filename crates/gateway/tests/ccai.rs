//! The real CCAI client against the simulator on loopback.

use std::{path::PathBuf, sync::Arc, time::Duration};

use adapter_core::backoff::Backoff;
use adapter_gateway::{
    ccai::{CallPlaced, CcaiApi, CcaiError, CcaiSettings, HttpCcai, PlaceCall, StatusSetter},
    config::Secret,
};
use adapter_simulator::{config::Config, Simulator};
use serde_json::Value;

struct Sim {
    url: String,
    _stop: tokio::sync::oneshot::Sender<()>,
}

async fn simulator() -> Sim {
    let config = Config::for_tests(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../host"));
    let simulator = Simulator::start(config).await.unwrap();
    let (api, _) = simulator.local_addrs().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(simulator.serve(async {
        let _ = stopped.await;
    }));
    Sim {
        url: format!("http://{api}"),
        _stop: stop,
    }
}

fn settings(url: &str) -> CcaiSettings {
    let mut settings = CcaiSettings::new(url, "demo", Secret::new("sim-token"));
    settings.backoff = Backoff {
        initial: Duration::from_millis(20),
        max: Duration::from_millis(200),
        ..Backoff::default()
    };
    settings
}

fn client(url: &str) -> HttpCcai {
    HttpCcai::new(settings(url)).unwrap()
}

async fn sim_state(sim: &Sim) -> Value {
    reqwest::get(format!("{}/_sim/state", sim.url))
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

fn statuses_of(state: &Value, path: &str) -> Vec<u64> {
    state["requests"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["path"] == path)
        .map(|r| r["status"].as_u64().unwrap())
        .collect()
}

#[tokio::test]
async fn statuses_and_agents_are_read_and_cached() {
    let sim = simulator().await;
    let ccai = client(&sim.url);
    let statuses = ccai.user_statuses().await.unwrap();
    let names: Vec<(&str, bool)> = statuses
        .iter()
        .map(|s| (s.name.as_str(), s.is_system()))
        .collect();
    assert!(names.contains(&("Available", false)));
    assert!(names.contains(&("In-call", true)));
    assert!(names.contains(&("Training", false)));
    assert_eq!(
        ccai.agent_id("Grace.Hopper@example.com ").await.unwrap(),
        Some(102)
    );
    assert_eq!(ccai.agent_id("nobody@example.com").await.unwrap(), None);
    ccai.user_statuses().await.unwrap();
    ccai.agent_id("ada.lovelace@example.com").await.unwrap();
    let state = sim_state(&sim).await;
    assert_eq!(
        statuses_of(&state, "/manager/api/v1/user_statuses"),
        [200],
        "statuses are cached"
    );
    assert_eq!(
        statuses_of(&state, "/manager/api/v1/agents"),
        [200],
        "a hit does not read the directory again, nor does a miss within \
         MIN_DIRECTORY_REFRESH of the last read (unknown emails cannot flood the tenant)"
    );
}

#[tokio::test]
async fn status_changes_of_many_agents_become_one_call_with_per_agent_results() {
    let sim = simulator().await;
    let setter = StatusSetter::spawn(Arc::new(client(&sim.url)), Duration::from_millis(50));
    let (a, b, c, unknown) = tokio::join!(
        setter.set(101, "Break"),
        setter.set(102, "Break"),
        setter.set(103, "Break"),
        setter.set(999, "Break"),
    );
    for result in [a, b, c] {
        let result = result.unwrap();
        assert_eq!(result.message, None);
        assert_eq!(
            result.current_status.unwrap().name.as_deref(),
            Some("Break")
        );
    }
    assert_eq!(unknown.unwrap().message.as_deref(), Some("Agent not found"));
    let state = sim_state(&sim).await;
    let requests = state["ccai"]["status_requests"].as_array().unwrap();
    assert_eq!(requests.len(), 1, "one agent_statuses call: {requests:?}");
    assert_eq!(
        requests[0]["agent_ids"],
        serde_json::json!([101, 102, 103, 999])
    );
}

#[tokio::test]
async fn system_statuses_are_refused_per_agent_with_the_platform_message() {
    let sim = simulator().await;
    let ccai = client(&sim.url);
    let results = ccai.set_status("In-call", &[102]).await.unwrap();
    assert_eq!(
        results[0].message.as_deref(),
        Some("Status 'In-call' can't be set")
    );
    let error = ccai.set_status("Napping", &[102]).await.unwrap_err();
    assert_eq!(
        error,
        CcaiError::Rejected("Status 'Napping' not found".into())
    );
}

#[tokio::test]
async fn calls_are_placed_with_number_email_and_conversation() {
    let sim = simulator().await;
    let ccai = client(&sim.url);
    let call = PlaceCall {
        agent_email: "grace.hopper@example.com".into(),
        end_user_number: Some("+14155552671".into()),
        ticket_id: Some("conv-1".into()),
        lang: Some("en".into()),
    };
    let placed = ccai.place_call(&call).await.unwrap();
    assert!(
        matches!(placed, CallPlaced::Created(ref info) if info.status.as_deref() == Some("assigned"))
    );
    let state = sim_state(&sim).await;
    let recorded = &state["ccai"]["calls"][0];
    assert_eq!(recorded["agent_email"], "grace.hopper@example.com");
    assert_eq!(recorded["end_user_number"], "+14155552671");
    assert_eq!(recorded["ticket_id"], "conv-1");
    assert_eq!(recorded["call_type"], "Voice Outbound (API)");

    // Two outbound numbers: the agent must pick one in the adapter.
    reqwest::Client::new()
        .post(format!("{}/_sim/ccai/outbound_numbers", sim.url))
        .json(&["+14155550100", "+14155550101"])
        .send()
        .await
        .unwrap();
    assert!(matches!(
        ccai.place_call(&call).await.unwrap(),
        CallPlaced::NeedsAgent(_)
    ));
}

#[tokio::test]
async fn refused_calls_say_why_in_the_platform_words() {
    let sim = simulator().await;
    let ccai = client(&sim.url);
    let call = |email: &str, number: &str| PlaceCall {
        agent_email: email.into(),
        end_user_number: Some(number.into()),
        ticket_id: None,
        lang: None,
    };
    let cases = [
        (
            call("alan.turing@example.com", "+14155552671"),
            "Agent is not available to take this call",
        ),
        (
            call("nobody@example.com", "+14155552671"),
            "Not a valid agent email",
        ),
        (
            call("grace.hopper@example.com", "555-2671"),
            "end_user_number is not well-formed",
        ),
    ];
    for (call, message) in cases {
        assert_eq!(
            ccai.place_call(&call).await,
            Err(CcaiError::Rejected(message.into()))
        );
    }
    let state = sim_state(&sim).await;
    assert_eq!(
        statuses_of(&state, "/apps/api/v1/calls"),
        [400, 400, 400],
        "a refused call is not retried"
    );
}

#[tokio::test]
async fn wrong_credentials_are_a_clear_error() {
    let sim = simulator().await;
    let ccai = HttpCcai::new(CcaiSettings::new(&sim.url, "demo", Secret::new("wrong"))).unwrap();
    let error = ccai.user_statuses().await.unwrap_err();
    assert_eq!(error, CcaiError::Unauthorized);
    assert!(error
        .to_string()
        .contains("check the tenant subdomain and API token"));
}

#[tokio::test]
async fn the_shared_budget_keeps_the_tenant_under_its_limit() {
    let sim = simulator().await;
    let ccai = Arc::new(client(&sim.url));
    let tasks: Vec<_> = (0..25)
        .map(|i| {
            let ccai = Arc::clone(&ccai);
            tokio::spawn(async move { ccai.set_status("Available", &[102 + (i % 2)]).await })
        })
        .collect();
    for task in tasks {
        task.await.unwrap().unwrap();
    }
    let state = sim_state(&sim).await;
    let codes = statuses_of(&state, "/apps/api/v1/agent_statuses");
    assert_eq!(codes.len(), 25);
    assert!(
        codes.iter().all(|c| *c == 200),
        "no request was refused for rate: {codes:?}"
    );
}

#[tokio::test]
async fn a_client_over_the_limit_backs_off_on_429_and_gets_through() {
    let sim = simulator().await;
    let mut settings = settings(&sim.url);
    settings.requests_per_second = 1_000;
    settings.attempts = 10;
    let ccai = Arc::new(HttpCcai::new(settings).unwrap());
    let tasks: Vec<_> = (0..20)
        .map(|_| {
            let ccai = Arc::clone(&ccai);
            tokio::spawn(async move { ccai.set_status("Available", &[102]).await })
        })
        .collect();
    for task in tasks {
        task.await.unwrap().unwrap();
    }
    let codes = statuses_of(&sim_state(&sim).await, "/apps/api/v1/agent_statuses");
    assert!(
        codes.contains(&429),
        "the simulator limited the burst: {codes:?}"
    );
    assert_eq!(
        codes.iter().filter(|c| **c == 200).count(),
        20,
        "every change landed once"
    );
}

#[tokio::test]
async fn an_unreachable_tenant_is_a_network_error_after_retries() {
    let ccai = client("http://127.0.0.1:1");
    let error = ccai.user_statuses().await.unwrap_err();
    assert!(matches!(error, CcaiError::Network(_)), "{error:?}");
}
