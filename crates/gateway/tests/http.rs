//! The gateway over real HTTP on loopback.

use std::{net::SocketAddr, path::PathBuf};

use adapter_core::health::Health;
use adapter_gateway::{config::Config, Gateway};
use tokio::sync::oneshot;

struct Running {
    addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<Result<(), adapter_gateway::GatewayError>>,
}

impl Running {
    async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        self.task.await.unwrap().unwrap();
    }
}

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "adapter-gateway-test-{name}-{}",
        std::process::id()
    ));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

async fn start(config: Config) -> Running {
    let gateway = Gateway::start(config).await.unwrap();
    let addr = gateway.local_addr().unwrap();
    let (tx, rx) = oneshot::channel();
    let task = tokio::spawn(gateway.serve(async {
        let _ = rx.await;
    }));
    Running {
        addr,
        stop: Some(tx),
        task,
    }
}

fn loopback() -> SocketAddr {
    "127.0.0.1:0".parse().unwrap()
}

#[tokio::test]
async fn healthz_reports_ok_with_a_request_id_and_no_caching() {
    let dir = temp_dir("healthz");
    let gw = start(Config::for_tests(loopback(), dir.clone())).await;
    let response = reqwest::get(format!("http://{}/healthz", gw.addr))
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["cache-control"], "no-store");
    assert_eq!(response.headers()["x-content-type-options"], "nosniff");
    assert!(response.headers().contains_key("x-request-id"));
    let health: Health = response.json().await.unwrap();
    assert!(health.is_ok());
    assert_eq!(health.version, adapter_gateway::VERSION);
    gw.stop().await;
    if adapter_gateway::store::DatabaseUrl::for_tests(&dir).engine()
        == adapter_gateway::store::Engine::Sqlite
    {
        assert!(
            dir.join("gateway.sqlite3").exists(),
            "the data folder and database are created"
        );
    }
}

#[tokio::test]
async fn restarts_reuse_the_database_and_migrations_are_idempotent() {
    let dir = temp_dir("restart");
    for _ in 0..2 {
        let gw = start(Config::for_tests(loopback(), dir.clone())).await;
        gw.stop().await;
    }
    let store = adapter_gateway::store::Store::for_tests(&dir)
        .await
        .unwrap();
    assert_eq!(store.record_start("test", "-").await.unwrap(), 3);
}

#[tokio::test]
async fn a_data_dir_that_cannot_be_created_is_a_clear_error() {
    let file = temp_dir("not-a-dir");
    std::fs::write(&file, b"").unwrap();
    // The data folder is SQLite's: this test is about it on any engine the suite runs on.
    let mut config = Config::for_tests(loopback(), file.join("sub"));
    config.database_url = None;
    let error = match Gateway::start(config).await {
        Ok(_) => panic!("a data dir under a file must not open"),
        Err(error) => error.to_string(),
    };
    assert!(error.contains("cannot create the data folder"), "{error}");
}

#[tokio::test]
async fn serves_the_widget_and_cors_only_for_allowed_origins() {
    let dir = temp_dir("widget");
    let widget = dir.join("dist");
    std::fs::create_dir_all(&widget).unwrap();
    std::fs::write(widget.join("index.html"), "<title>adapter</title>").unwrap();
    let mut config = Config::for_tests(loopback(), dir.join("data"));
    config.widget_dir = Some(widget);
    config.allowed_origins = vec!["http://widget.test".into()];
    let gw = start(config).await;
    let client = reqwest::Client::new();

    let page = client
        .get(format!("http://{}/", gw.addr))
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 200);
    assert!(page.text().await.unwrap().contains("adapter"));

    let allowed = client
        .get(format!("http://{}/healthz", gw.addr))
        .header("origin", "http://widget.test")
        .send()
        .await
        .unwrap();
    assert_eq!(
        allowed.headers()["access-control-allow-origin"],
        "http://widget.test"
    );
    let foreign = client
        .get(format!("http://{}/healthz", gw.addr))
        .header("origin", "http://evil.test")
        .send()
        .await
        .unwrap();
    assert!(!foreign
        .headers()
        .contains_key("access-control-allow-origin"));
    gw.stop().await;
}
