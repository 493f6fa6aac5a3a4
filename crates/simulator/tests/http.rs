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

#[tokio::test]
async fn records_api_requests_and_reports_them_as_state() {
    let (api, _host, _stop) = start().await;
    let client = reqwest::Client::new();
    assert_eq!(
        client
            .get(format!("{api}/healthz"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    assert_eq!(
        client
            .get(format!("{api}/nope"))
            .send()
            .await
            .unwrap()
            .status(),
        404
    );
    let state: serde_json::Value = client
        .get(format!("{api}/_sim/state"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let requests = state["requests"].as_array().unwrap();
    let seen: Vec<(&str, &str, u64)> = requests
        .iter()
        .map(|r| {
            (
                r["method"].as_str().unwrap(),
                r["path"].as_str().unwrap(),
                r["status"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(seen, [("GET", "/healthz", 200), ("GET", "/nope", 404)]);

    assert_eq!(
        client
            .post(format!("{api}/_sim/reset"))
            .send()
            .await
            .unwrap()
            .status(),
        204
    );
    let state: serde_json::Value = client
        .get(format!("{api}/_sim/state"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(state["requests"].as_array().unwrap().len(), 0);
}

#[tokio::test]
async fn serves_the_host_emulator_with_an_escaped_adapter_url() {
    let (_api, host, _stop) = start().await;
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
        "window.HOST_CONFIG = {\"adapterUrl\":\"http://127.0.0.1:1/\\\"</script>\"};\n"
    );
}
