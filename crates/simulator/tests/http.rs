//! The simulator over real HTTP on loopback.

use std::path::PathBuf;

use adapter_simulator::{config::Config, Simulator};

fn host_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../host")
}

async fn start() -> (String, String, tokio::sync::oneshot::Sender<()>) {
    let mut config = Config::for_tests(host_dir());
    config.adapter_url = "http://127.0.0.1:1/\"</script>".into();
    let simulator = Simulator::start(config).await.unwrap();
    let (api, host) = simulator.local_addrs().unwrap();
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(simulator.serve(async {
        let _ = rx.await;
    }));
    (format!("http://{api}"), format!("http://{host}"), tx)
}

async fn status(request: reqwest::RequestBuilder) -> u16 {
    request.send().await.unwrap().status().as_u16()
}

/// The recorded requests as (method, path, status).
async fn recorded(client: &reqwest::Client, api: &str) -> Vec<(String, String, u64)> {
    let state: serde_json::Value = client
        .get(format!("{api}/_sim/state"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    state["requests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["method"].as_str().unwrap().to_owned(),
                r["path"].as_str().unwrap().to_owned(),
                r["status"].as_u64().unwrap(),
            )
        })
        .collect()
}

#[tokio::test]
async fn records_api_requests_and_reports_them_as_state() {
    let (api, _host, _stop) = start().await;
    let client = reqwest::Client::new();
    assert_eq!(status(client.get(format!("{api}/healthz"))).await, 200);
    assert_eq!(status(client.get(format!("{api}/nope"))).await, 404);
    let seen = recorded(&client, &api).await;
    let seen: Vec<(&str, &str, u64)> = seen
        .iter()
        .map(|(m, p, s)| (m.as_str(), p.as_str(), *s))
        .collect();
    assert_eq!(
        seen,
        [("GET", "/healthz", 200), ("GET", "/nope", 404)],
        "reads of /_sim/ are not recorded"
    );

    assert_eq!(status(client.post(format!("{api}/_sim/reset"))).await, 204);
    assert!(recorded(&client, &api).await.is_empty());
}

#[tokio::test]
async fn serves_the_host_emulator_with_an_escaped_adapter_url() {
    let (api, host, _stop) = start().await;
    let page = reqwest::get(format!("{host}/")).await.unwrap();
    assert_eq!(page.status(), 200);
    assert!(page.text().await.unwrap().contains("adapter-frame"));
    let config = reqwest::get(format!("{host}/config.js"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(
        config,
        format!("window.HOST_CONFIG = {{\"adapterUrl\":\"http://127.0.0.1:1/\\\"</script>\",\"simulatorUrl\":\"{api}\"}};\n")
    );
    let hostile = reqwest::get(format!("{api}/_sim/hostile.html"))
        .await
        .unwrap();
    assert_eq!(hostile.status(), 200);
    assert!(hostile.text().await.unwrap().contains("must ignore"));
}
