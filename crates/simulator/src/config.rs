//! Typed configuration from flags or environment; the defaults run the demo on loopback.

use std::{net::SocketAddr, path::PathBuf};

use clap::Parser;

#[derive(Parser, Clone, Debug)]
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
        }
    }
}
