//! Typed configuration from flags or environment; the defaults run the demo on loopback.

use std::{net::SocketAddr, path::PathBuf};

use clap::Parser;

#[derive(Parser, Clone)]
#[command(
    name = "adapter-simulator",
    version,
    about = "CCAI Platform and Kustomer stand-ins, and the host emulator"
)]
pub struct Config {
    /// Address of the simulated CCAI Platform and Kustomer APIs.
    #[arg(long, env = "SIMULATOR_LISTEN", default_value = "127.0.0.1:8710")]
    pub listen: SocketAddr,

    /// Address of the host emulator (the stand-in Kustomer agent desktop). It must be another
    /// origin than the widget's, as Kustomer is in production.
    #[arg(long, env = "SIMULATOR_HOST_LISTEN", default_value = "127.0.0.1:8720")]
    pub host_listen: SocketAddr,

    /// Folder holding the host emulator's page, scripts and styles.
    #[arg(long, env = "SIMULATOR_HOST_DIR", default_value = "host")]
    pub host_dir: PathBuf,

    /// URL of the adapter widget that the host emulator loads in its sidebar iframe.
    #[arg(
        long,
        env = "SIMULATOR_ADAPTER_URL",
        default_value = "http://127.0.0.1:8700/"
    )]
    pub adapter_url: String,

    /// The simulated CCAI tenant's subdomain: the HTTP Basic user name its API expects.
    #[arg(long, env = "SIMULATOR_CCAI_SUBDOMAIN", default_value = "demo")]
    pub ccai_subdomain: String,

    /// The simulated CCAI tenant's API token: the HTTP Basic password its API expects.
    #[arg(long, env = "SIMULATOR_CCAI_TOKEN", default_value = "sim-token")]
    pub ccai_token: String,

    /// Where session events go (the gateway's `/webhooks/ccai`: call events to `/calls`, chat
    /// events to `/chats`, the extension's to `/extension`); none: no events are sent.
    #[arg(long, env = "SIMULATOR_WEBHOOK_URL")]
    pub webhook_url: Option<String>,

    /// HTTP Basic user name the call events (and the extension's) carry.
    #[arg(long, env = "SIMULATOR_WEBHOOK_USER", default_value = "ccai-webhooks")]
    pub webhook_user: String,

    /// HTTP Basic user name the chat events carry (configured separately, as on the platform).
    #[arg(
        long,
        env = "SIMULATOR_CHAT_WEBHOOK_USER",
        default_value = "ccai-chat-webhooks"
    )]
    pub chat_webhook_user: String,

    /// HTTP Basic password the chat events carry. Never logged.
    #[arg(
        long,
        env = "SIMULATOR_CHAT_WEBHOOK_PASSWORD",
        default_value = "",
        hide_default_value = true
    )]
    pub chat_webhook_password: String,

    /// HTTP Basic password the call events carry. Never logged.
    #[arg(
        long,
        env = "SIMULATOR_WEBHOOK_PASSWORD",
        default_value = "",
        hide_default_value = true
    )]
    pub webhook_password: String,

    /// Seconds of wrap-up after a call or chat ends before the agent's next status applies;
    /// 0: only `POST /_sim/calls/{id}/wrap_up_done` ends it.
    #[arg(long, env = "SIMULATOR_WRAP_UP_SECONDS", default_value_t = 5)]
    pub wrap_up_seconds: u64,

    /// Offer the simulator-only call-control extension (`/ext/call-control/v1`); `false`
    /// answers 404 there, like the public CCAI API.
    #[arg(long, env = "SIMULATOR_CALL_CONTROLS", default_value_t = true, action = clap::ArgAction::Set)]
    pub call_controls: bool,

    /// The simulated Kustomer org's API key (`Authorization: Bearer`). Never logged.
    #[arg(
        long,
        env = "SIMULATOR_KUSTOMER_API_KEY",
        default_value = crate::kustomer::DEV_API_KEY,
        hide_default_value = true
    )]
    pub kustomer_api_key: String,

    /// The simulated Kustomer org's request budget per minute (all API keys together).
    #[arg(long, env = "SIMULATOR_KUSTOMER_RATE_LIMIT", default_value_t = crate::kustomer::DEFAULT_PER_WINDOW)]
    pub kustomer_rate_limit: u32,
}

impl Config {
    /// Every default, with both listeners on free loopback ports.
    pub fn for_tests(host_dir: PathBuf) -> Self {
        Config {
            listen: "127.0.0.1:0".parse().expect("literal address"),
            host_listen: "127.0.0.1:0".parse().expect("literal address"),
            host_dir,
            adapter_url: "http://127.0.0.1:8700/".into(),
            ccai_subdomain: "demo".into(),
            ccai_token: "sim-token".into(),
            webhook_url: None,
            webhook_user: "ccai-webhooks".into(),
            webhook_password: String::new(),
            chat_webhook_user: "ccai-chat-webhooks".into(),
            chat_webhook_password: String::new(),
            wrap_up_seconds: 0,
            call_controls: true,
            kustomer_api_key: crate::kustomer::DEV_API_KEY.into(),
            kustomer_rate_limit: crate::kustomer::DEFAULT_PER_WINDOW,
        }
    }
}

impl std::fmt::Debug for Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Config")
            .field("listen", &self.listen)
            .field("host_listen", &self.host_listen)
            .field("host_dir", &self.host_dir)
            .field("adapter_url", &self.adapter_url)
            .field("ccai_subdomain", &self.ccai_subdomain)
            .field("webhook_url", &self.webhook_url)
            .field("webhook_user", &self.webhook_user)
            .field("wrap_up_seconds", &self.wrap_up_seconds)
            .field("call_controls", &self.call_controls)
            .field("kustomer_rate_limit", &self.kustomer_rate_limit)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn webhooks_are_off_unless_a_url_is_given_and_secrets_never_print() {
        let config = Config::try_parse_from(["adapter-simulator"]).unwrap();
        assert_eq!(config.webhook_url, None);
        assert_eq!(config.wrap_up_seconds, 5);
        assert!(config.call_controls);
        let config = Config::try_parse_from([
            "adapter-simulator",
            "--webhook-url",
            "http://127.0.0.1:8700/webhooks/ccai",
            "--webhook-password",
            "hunter2",
            "--ccai-token",
            "t0k3n",
            "--call-controls",
            "false",
        ])
        .unwrap();
        assert!(!config.call_controls);
        let printed = format!("{config:?}");
        assert!(
            !printed.contains("hunter2") && !printed.contains("t0k3n"),
            "{printed}"
        );
    }
}
