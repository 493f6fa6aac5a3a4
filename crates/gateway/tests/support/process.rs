//! The real `adapter-gateway` binary as a child process, for the crash and failover tests: it
//! is SIGKILLed and started again on the same address and store.

use std::{
    net::SocketAddr,
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::Duration,
};

use reqwest::Client;
use tokio::time::Instant;

/// A gateway process; killed (SIGKILL) when dropped.
pub struct GatewayProcess {
    child: Option<Child>,
    pub addr: SocketAddr,
    data_dir: PathBuf,
    /// The folder whose test database the gateway opens (its own data folder, or a replica's
    /// first one, so that replicas share one store).
    store_dir: PathBuf,
    args: Vec<String>,
    env: Vec<(String, String)>,
    log: PathBuf,
    starts: usize,
}

impl GatewayProcess {
    /// A gateway on a free loopback port with `args` and `env` (its CCAI and Kustomer URLs
    /// among them), its store opened through `DatabaseUrl::for_tests(store_dir)`: SQLite in
    /// that folder, or the test suites' PostgreSQL database for it. Not started yet.
    pub fn new(
        data_dir: &Path,
        store_dir: &Path,
        args: &[&str],
        env: &[(&str, &str)],
    ) -> GatewayProcess {
        GatewayProcess {
            child: None,
            addr: free_addr(),
            data_dir: data_dir.to_owned(),
            store_dir: store_dir.to_owned(),
            args: args.iter().map(|a| (*a).to_owned()).collect(),
            env: env
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
            log: data_dir.with_extension("log"),
            starts: 0,
        }
    }

    pub fn start(&mut self) {
        self.starts += 1;
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .expect("gateway log file");
        let child = Command::new(env!("CARGO_BIN_EXE_adapter-gateway"))
            .arg("--listen")
            .arg(self.addr.to_string())
            .arg("--data-dir")
            .arg(&self.data_dir)
            .env(
                "GATEWAY_DATABASE_URL",
                adapter_gateway::store::DatabaseUrl::for_tests(&self.store_dir).expose(),
            )
            .args(&self.args)
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("gateway log file"))
            .stderr(log)
            .spawn()
            .expect("the adapter-gateway binary starts");
        self.child = Some(child);
    }

    /// SIGKILL, reaped: the gateway must still be running (not exited on its own) when killed.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let exited = child.try_wait().expect("the gateway's state");
            assert!(
                exited.is_none(),
                "the gateway exited on its own before kill (start {}): {exited:?}\n{}",
                self.starts,
                self.log_tail()
            );
            child.kill().expect("SIGKILL the gateway");
            let status = child.wait().expect("reap the gateway");
            assert!(!status.success(), "killed, not exited: {status}");
        }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The end of the gateway's log, for failure messages.
    pub fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(40)..].join("\n")
    }

    /// Waits until the gateway answers `/healthz`.
    pub async fn ready(&mut self, http: &Client) {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(Ok(Some(status))) = self.child.as_mut().map(Child::try_wait) {
                panic!(
                    "the gateway exited at start {}: {status}\n{}",
                    self.starts,
                    self.log_tail()
                );
            }
            let ok = http
                .get(format!("{}/healthz", self.url()))
                .send()
                .await
                .is_ok_and(|r| r.status().is_success());
            if ok {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "the gateway did not answer within 30 s of start {}\n{}",
                self.starts,
                self.log_tail()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Removes the data folder and the log.
    pub fn remove_files(&self) {
        let _ = std::fs::remove_dir_all(&self.data_dir);
        let _ = std::fs::remove_file(&self.log);
    }
}

impl Drop for GatewayProcess {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// A free loopback port (bound, read, released): a gateway gets it again at every restart.
pub fn free_addr() -> SocketAddr {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("a free port");
    listener.local_addr().expect("its address")
}
