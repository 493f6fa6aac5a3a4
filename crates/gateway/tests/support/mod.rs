//! What the gateway's integration tests share: the simulator and a gateway on loopback (the
//! gateway's CCAI and Kustomer sides pointed at the simulator, its webhooks sent to the
//! gateway when asked), and JSON calls.
#![allow(dead_code)] // each test binary uses its own part

use std::{net::SocketAddr, path::PathBuf};

use adapter_gateway::{
    config::{Config, Secret},
    Gateway,
};
use adapter_simulator::{webhooks::Target, Simulator};
use reqwest::StatusCode;
use serde_json::Value;

pub const HOOK_USER: &str = "ccai-hooks";
pub const HOOK_PASSWORD: &str = "hook-secret";
/// The chat events' credentials: configured apart from the call events', as on the platform.
pub const CHAT_HOOK_USER: &str = "ccai-chat-hooks";
pub const CHAT_HOOK_PASSWORD: &str = "chat-hook-secret";

/// A running simulator and gateway; both stop when this is dropped.
pub struct Running {
    pub gateway: SocketAddr,
    pub simulator: SocketAddr,
    _stops: Vec<tokio::sync::oneshot::Sender<()>>,
}

/// How to start them.
pub struct Start<'a> {
    /// Names the gateway's data folder (fresh for each run).
    pub name: &'a str,
    /// The simulator sends its session webhooks to the gateway, which accepts them.
    pub webhooks: bool,
    /// The simulator offers call controls.
    pub call_controls: bool,
}

impl<'a> Start<'a> {
    pub fn new(name: &'a str) -> Self {
        Start {
            name,
            webhooks: false,
            call_controls: true,
        }
    }

    /// Starts both; `configure` adjusts the gateway's configuration last.
    pub async fn run(self, configure: impl FnOnce(&mut Config)) -> Running {
        let mut sim_config = adapter_simulator::config::Config::for_tests(
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../host"),
        );
        sim_config.call_controls = self.call_controls;
        let simulator = Simulator::start(sim_config).await.unwrap();
        let (sim_api, _) = simulator.local_addrs().unwrap();
        let hooks = simulator.webhooks();
        let (sim_stop, sim_stopped) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(simulator.serve(async {
            let _ = sim_stopped.await;
        }));

        let dir =
            std::env::temp_dir().join(format!("adapter-test-{}-{}", self.name, std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let listen: SocketAddr = "127.0.0.1:0".parse().unwrap();
        let mut config = Config::for_tests(listen, dir);
        config.ccai_url = format!("http://{sim_api}");
        config.crm.kustomer_url = format!("http://{sim_api}");
        if self.webhooks {
            config.call_webhook_user = Some(HOOK_USER.into());
            config.chat_webhook_user = Some(CHAT_HOOK_USER.into());
            config.ccai_extension = true;
            config.call_webhook_password = Some(Secret::new(HOOK_PASSWORD));
            config.chat_webhook_password = Some(Secret::new(CHAT_HOOK_PASSWORD));
        }
        configure(&mut config);
        let gateway = Gateway::start(config).await.unwrap();
        let addr = gateway.local_addr().unwrap();
        if self.webhooks {
            hooks.set_target(Some(Target {
                url: format!("http://{addr}/webhooks/ccai"),
                user: HOOK_USER.into(),
                password: HOOK_PASSWORD.into(),
                chat_user: CHAT_HOOK_USER.into(),
                chat_password: CHAT_HOOK_PASSWORD.into(),
            }));
        }
        let (gw_stop, gw_stopped) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(gateway.serve(async {
            let _ = gw_stopped.await;
        }));
        Running {
            gateway: addr,
            simulator: sim_api,
            _stops: vec![sim_stop, gw_stop],
        }
    }
}

/// Sends `request`; its status and JSON body (`null` when it has none).
pub async fn call(request: reqwest::RequestBuilder) -> (StatusCode, Value) {
    let response = request.send().await.unwrap();
    let status = response.status();
    (status, response.json().await.unwrap_or(Value::Null))
}

/// The stable code of an agent API error.
pub fn code(body: &Value) -> &str {
    body["error"]["code"].as_str().unwrap_or("-")
}
