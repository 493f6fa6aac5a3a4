//! Typed configuration, from command-line flags or environment variables. The defaults run the
//! embedded demo on loopback.

use std::{
    net::SocketAddr,
    path::{Path, PathBuf},
    str::FromStr,
};

use adapter_core::origins::OriginPattern;
use clap::{Args, Parser};

pub use crate::secret::Secret;

#[derive(Parser, Clone, Debug)]
#[command(
    name = "adapter-gateway",
    version,
    about = "Gateway of the CCAI Platform adapter for Kustomer"
)]
pub struct Config {
    /// Address to listen on.
    #[arg(long, env = "GATEWAY_LISTEN", default_value = "127.0.0.1:8700")]
    pub listen: SocketAddr,

    /// Folder for the gateway's SQLite database; created when missing.
    #[arg(long, env = "GATEWAY_DATA_DIR", default_value = "data/gateway")]
    pub data_dir: PathBuf,

    /// The store: `postgres://user:password@host:port/database` for replicas sharing one
    /// PostgreSQL database (created when missing); unset, SQLite in `--data-dir`.
    #[arg(long, env = "GATEWAY_DATABASE_URL", hide_env_values = true)]
    pub database_url: Option<DatabaseUrl>,

    /// When a commit of the store counts as done (SQLite only): `full`, on the disk (survives a power loss);
    /// `normal`, handed to the operating system (survives a crash of the gateway, not of the
    /// machine; faster on a slow disk).
    #[arg(long, env = "GATEWAY_STORE_SYNC", value_enum, default_value_t = StoreSync::Full)]
    pub store_sync: StoreSync,

    /// Serve the built widget (Trunk's `dist/`) from this folder at `/`, so that one process
    /// serves both. Leave unset when the widget is on its own static host.
    #[arg(long, env = "GATEWAY_WIDGET_DIR")]
    pub widget_dir: Option<PathBuf>,

    /// Origins allowed to call the API from a browser (the widget's origin when it is served
    /// from another host), comma-separated, e.g. `https://adapter.example.com`.
    #[arg(long, env = "GATEWAY_ALLOWED_ORIGINS", value_delimiter = ',')]
    pub allowed_origins: Vec<String>,

    /// Kustomer origins allowed to host the widget, comma-separated: only they may frame its
    /// pages (CSP `frame-ancestors`), and the widget talks only to a host of one of them.
    /// `https://*.kustomerapp.com` allows every subdomain; usually the org's own,
    /// `https://{org}.kustomerapp.com`. The default is the demo's host emulator.
    #[arg(
        long,
        env = "GATEWAY_KUSTOMER_ORIGINS",
        value_delimiter = ',',
        default_value = "http://127.0.0.1:8720"
    )]
    pub kustomer_origins: Vec<OriginPattern>,

    /// At most this many event streams open at once for one agent (tabs and browsers
    /// together); one more is closed with code 4029.
    #[arg(long, env = "GATEWAY_MAX_STREAMS_PER_AGENT", default_value_t = 16, value_parser = clap::value_parser!(u32).range(1..=100_000))]
    pub max_streams_per_agent: u32,

    /// At most this many event streams open at once from one client address (signed in or not
    /// yet; see `--trusted-proxies` for what the address is); one more is closed with code 4029.
    #[arg(long, env = "GATEWAY_MAX_STREAMS_PER_ADDRESS", default_value_t = 64, value_parser = clap::value_parser!(u32).range(1..=100_000))]
    pub max_streams_per_address: u32,

    /// The reverse proxies and load balancers in front of the gateway, comma-separated
    /// addresses or ranges (`10.0.0.5`, `10.0.0.0/24`, `fd00::/8`). A request whose TCP peer is
    /// one of them is counted (sign-in and webhook throttles, stream caps) under the client
    /// address its `X-Forwarded-For` names, read from the right and past the trusted ones; from
    /// anyone else the header is ignored, since a client could write anything there. Empty
    /// (the default): the TCP peer is the client.
    #[arg(long, env = "GATEWAY_TRUSTED_PROXIES", value_delimiter = ',', value_parser = parse_proxy)]
    pub trusted_proxies: Vec<ipnet::IpNet>,

    /// The CCAI Platform tenant's URL, `https://{subdomain}.{domain}` (the simulator's by default).
    #[arg(
        long,
        env = "GATEWAY_CCAI_URL",
        default_value = "http://127.0.0.1:8710"
    )]
    pub ccai_url: String,

    /// The tenant's subdomain: the user name of the API's HTTP Basic credentials.
    #[arg(long, env = "GATEWAY_CCAI_SUBDOMAIN", default_value = "demo")]
    pub ccai_subdomain: String,

    /// The tenant's API token (Settings > Developer Settings > API Credentials). Never logged.
    #[arg(
        long,
        env = "GATEWAY_CCAI_TOKEN",
        default_value = "sim-token",
        hide_default_value = true,
        hide_env_values = true
    )]
    pub ccai_token: Secret,

    /// Agents who may sign in: a JSON array of `{"email", "password_hash"}` (argon2 PHC strings).
    #[arg(long, env = "GATEWAY_AGENTS_FILE", conflicts_with = "dev_sign_in")]
    pub agents_file: Option<PathBuf>,

    /// Demo only: any agent the CCAI tenant knows signs in by email, without a password.
    #[arg(long, env = "GATEWAY_DEV_SIGN_IN")]
    pub dev_sign_in: bool,

    /// User name the platform's call session events must carry (HTTP Basic), as configured
    /// for "Call events" under Session Data Export. Without it and `--call-webhook-password`,
    /// `POST /webhooks/ccai/calls` answers 503 `webhooks_disabled`.
    #[arg(long, env = "GATEWAY_CALL_WEBHOOK_USER")]
    pub call_webhook_user: Option<String>,

    /// Password the call session events must carry (HTTP Basic). Never logged.
    #[arg(long, env = "GATEWAY_CALL_WEBHOOK_PASSWORD", hide_env_values = true)]
    pub call_webhook_password: Option<Secret>,

    /// User name the platform's chat session events must carry (HTTP Basic), configured
    /// separately from the call events. Without it, `POST /webhooks/ccai/chats` answers 503.
    #[arg(long, env = "GATEWAY_CHAT_WEBHOOK_USER")]
    pub chat_webhook_user: Option<String>,

    /// Password the chat session events must carry (HTTP Basic). Never logged.
    #[arg(long, env = "GATEWAY_CHAT_WEBHOOK_PASSWORD", hide_env_values = true)]
    pub chat_webhook_password: Option<Secret>,

    /// Take the simulator's extension events (`POST /webhooks/ccai/extension`, with the call
    /// events' credentials): what the public CCAI APIs do not document (SmartAction results,
    /// chat transcripts, CSAT comments, voicemail read/dismissed, in-call changes, SDK custom
    /// data, which call a call-back follows). Off for a real tenant.
    #[arg(long, env = "GATEWAY_CCAI_EXTENSION", default_value_t = false, action = clap::ArgAction::Set)]
    pub ccai_extension: bool,

    /// Emails of the agents who administer the adapter (status inheritance settings),
    /// comma-separated.
    #[arg(long, env = "GATEWAY_ADMIN_EMAILS", value_delimiter = ',')]
    pub admin_emails: Vec<String>,

    /// The CRM sync: Kustomer URL and API key, the org's budget.
    #[command(flatten)]
    pub crm: CrmConfig,

    /// How often every known agent's status is read from the agent directory, in seconds (one
    /// paged read for all of them, inside the tenant's budget); 0 turns the periodic read off.
    #[arg(long, env = "GATEWAY_STATUS_REFRESH_SECONDS", default_value_t = 30)]
    pub status_refresh_seconds: u64,

    /// How often the call controls the CCAI upstream offers are asked again, in seconds (they
    /// are asked at start too).
    #[arg(long, env = "GATEWAY_CAPABILITIES_REFRESH_SECONDS", default_value_t = 300, value_parser = clap::value_parser!(u64).range(1..=86_400))]
    pub capabilities_refresh_seconds: u64,

    /// How long a session lasts without a refresh, in minutes.
    #[arg(long, env = "GATEWAY_SESSION_MINUTES", default_value_t = 15, value_parser = clap::value_parser!(u64).range(1..=1440))]
    pub session_minutes: u64,

    /// The longest a sign-in lasts however often it is refreshed, in hours (a working day by
    /// default); then the agent signs in again.
    #[arg(long, env = "GATEWAY_SESSION_MAX_HOURS", default_value_t = 12, value_parser = clap::value_parser!(u64).range(1..=168))]
    pub session_max_hours: u64,

    /// Live sessions one agent may hold (a browser each); a new sign-in beyond it ends the
    /// oldest.
    #[arg(long, env = "GATEWAY_SESSIONS_PER_AGENT", default_value_t = 10, value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub sessions_per_agent: u32,

    /// Sign-in attempts a minute from one client address (right or wrong); more are answered
    /// 429 with `Retry-After`.
    #[arg(long, env = "GATEWAY_SIGN_IN_PER_MINUTE", default_value_t = 30, value_parser = clap::value_parser!(u32).range(1..=100_000))]
    pub sign_in_per_minute: u32,

    /// Wrong passwords a minute for one email; beyond it every sign-in of that email is
    /// answered 429 until the minute has passed.
    #[arg(long, env = "GATEWAY_SIGN_IN_FAILURES_PER_MINUTE", default_value_t = 5, value_parser = clap::value_parser!(u32).range(1..=100_000))]
    pub sign_in_failures_per_minute: u32,

    /// Wrong webhook credentials a minute from one client address; beyond it the address's
    /// webhooks are answered 429 until the minute has passed.
    #[arg(long, env = "GATEWAY_WEBHOOK_FAILURES_PER_MINUTE", default_value_t = 10, value_parser = clap::value_parser!(u32).range(1..=100_000))]
    pub webhook_failures_per_minute: u32,
}

impl Config {
    /// Whether `email` administers the adapter.
    pub fn is_admin(&self, email: &str) -> bool {
        self.admin_emails
            .iter()
            .any(|admin| admin.trim().eq_ignore_ascii_case(email.trim()))
    }

    /// The configuration with every default, listening on `listen`, storing in `data_dir` (or
    /// on the test suites' PostgreSQL server: [`DatabaseUrl::for_tests`]).
    pub fn for_tests(listen: SocketAddr, data_dir: PathBuf) -> Self {
        Config {
            listen,
            database_url: Some(DatabaseUrl::for_tests(&data_dir)),
            data_dir,
            store_sync: StoreSync::Full,
            widget_dir: None,
            allowed_origins: Vec::new(),
            kustomer_origins: vec![OriginPattern::parse("http://127.0.0.1:8720")
                .expect("the demo's host emulator origin reads")],
            max_streams_per_agent: 16,
            max_streams_per_address: 64,
            trusted_proxies: Vec::new(),
            ccai_url: "http://127.0.0.1:8710".into(),
            ccai_subdomain: "demo".into(),
            ccai_token: Secret::new("sim-token"),
            agents_file: None,
            dev_sign_in: true,
            call_webhook_user: None,
            call_webhook_password: None,
            chat_webhook_user: None,
            chat_webhook_password: None,
            ccai_extension: false,
            admin_emails: Vec::new(),
            crm: CrmConfig::for_tests(),
            session_minutes: 15,
            session_max_hours: 12,
            sessions_per_agent: 10,
            sign_in_per_minute: 30,
            sign_in_failures_per_minute: 5,
            webhook_failures_per_minute: 10,
            status_refresh_seconds: 30,
            capabilities_refresh_seconds: 300,
        }
    }
}

/// A trusted proxy: an address (`10.0.0.5`, a range of one) or a range (`10.0.0.0/24`).
fn parse_proxy(text: &str) -> Result<ipnet::IpNet, String> {
    let text = text.trim();
    text.parse::<ipnet::IpNet>()
        .or_else(|_| text.parse::<std::net::IpAddr>().map(ipnet::IpNet::from))
        .map_err(|_| {
            format!("{text:?} is not an IP address or range (e.g. 10.0.0.5 or 10.0.0.0/24)")
        })
}

/// Whether a gateway listening on `listen` and talking to the tenant at `ccai_url` is a
/// machine's own demo: both on loopback (development sign-in is allowed only then).
pub fn is_loopback(listen: SocketAddr, ccai_url: &str) -> bool {
    listen.ip().is_loopback() && url_is_loopback(ccai_url)
}

/// Whether `url`'s host is a loopback address or `localhost`.
pub fn url_is_loopback(url: &str) -> bool {
    let Ok(url) = reqwest::Url::parse(url) else {
        return false;
    };
    let Some(host) = url.host_str() else {
        return false;
    };
    let host = host.trim_start_matches('[').trim_end_matches(']');
    host.eq_ignore_ascii_case("localhost")
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// The engine behind a store.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Engine {
    Sqlite,
    Postgres,
}

/// Where the store is: `sqlite://{file}` (the file's path percent-encoded, as in any URL) or
/// `postgres://{user}:{password}@{host}/{database}`. Kept as a [`Secret`]: a PostgreSQL URL may
/// carry a password, so it is never printed.
#[derive(Clone, Debug)]
pub struct DatabaseUrl {
    url: Secret,
    engine: Engine,
}

impl DatabaseUrl {
    /// The embedded default: `gateway.sqlite3` in `data_dir`.
    pub fn in_folder(data_dir: &Path) -> Self {
        /// What a path may hold that a URL reads otherwise: a space, `?` (the query), `#` (a
        /// fragment), `%` (an escape); and controls. Non-ASCII is always escaped.
        const IN_PATH: &percent_encoding::AsciiSet = &percent_encoding::CONTROLS
            .add(b' ')
            .add(b'?')
            .add(b'#')
            .add(b'%');
        let file = data_dir.join("gateway.sqlite3");
        let file = file.to_string_lossy();
        DatabaseUrl {
            url: Secret::new(format!(
                "sqlite://{}",
                percent_encoding::utf8_percent_encode(&file, IN_PATH)
            )),
            engine: Engine::Sqlite,
        }
    }

    /// SQLite: the file's path, as the URL's path decoded (its query, if any, left out).
    pub fn sqlite_file(&self) -> Option<PathBuf> {
        let rest = self.expose().strip_prefix("sqlite:")?;
        let encoded = rest.trim_start_matches("//").split('?').next()?;
        let decoded = percent_encoding::percent_decode_str(encoded).decode_utf8_lossy();
        Some(PathBuf::from(decoded.as_ref()))
    }

    pub fn engine(&self) -> Engine {
        self.engine
    }

    /// The URL itself, for connecting; never for a log.
    pub fn expose(&self) -> &str {
        self.url.expose()
    }

    /// For the test suites: with `GATEWAY_TEST_DATABASE_URL` set to a PostgreSQL server
    /// (`postgres://user@host:port`), each data folder gets a database of its own there, named
    /// after the folder, so a test that restarts its gateway on the same folder finds its data
    /// again; unset, the SQLite default in the folder.
    pub fn for_tests(data_dir: &Path) -> Self {
        match std::env::var("GATEWAY_TEST_DATABASE_URL") {
            Ok(server) if !server.is_empty() => {
                use std::hash::{Hash, Hasher};
                let mut hash = std::collections::hash_map::DefaultHasher::new();
                data_dir.hash(&mut hash);
                format!("{}/t_{:016x}", server.trim_end_matches('/'), hash.finish())
                    .parse()
                    .expect("GATEWAY_TEST_DATABASE_URL is a postgres:// URL")
            }
            _ => DatabaseUrl::in_folder(data_dir),
        }
    }
}

impl FromStr for DatabaseUrl {
    type Err = String;

    fn from_str(url: &str) -> Result<Self, String> {
        let engine = if url.starts_with("sqlite:") {
            Engine::Sqlite
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Engine::Postgres
        } else {
            return Err("a database URL begins with sqlite:// or postgres://".into());
        };
        Ok(DatabaseUrl {
            url: Secret::new(url),
            engine,
        })
    }
}

/// How far a commit goes before it counts as done (SQLite's `synchronous`, in WAL mode; a
/// PostgreSQL store commits as its server is configured).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum StoreSync {
    /// On the disk (an fsync per commit, shared by a group commit): nothing acknowledged is
    /// lost even when the machine loses power.
    #[default]
    Full,
    /// In the operating system (the write-ahead log is synced at checkpoints): nothing
    /// acknowledged is lost when the gateway crashes or is killed, but a power loss or an
    /// operating-system crash can lose the last commits.
    Normal,
}

/// Configuration of the CRM sync (flags and environment).
#[derive(Args, Clone, Debug)]
pub struct CrmConfig {
    /// The Kustomer org's API URL, `https://{org}.api.kustomerapp.com` (the simulator's by default).
    #[arg(
        long,
        env = "GATEWAY_KUSTOMER_URL",
        default_value = "http://127.0.0.1:8710"
    )]
    pub kustomer_url: String,

    /// The Kustomer API key (Bearer). Never logged.
    #[arg(
        long,
        env = "GATEWAY_KUSTOMER_API_KEY",
        default_value = "sim-kustomer-key",
        hide_default_value = true,
        hide_env_values = true
    )]
    pub kustomer_api_key: Secret,

    /// The org's Kustomer request budget per minute (its plan: 1,000 to 2,000), shared by every
    /// gateway replica on the same store.
    #[arg(long, env = "GATEWAY_KUSTOMER_RATE_LIMIT", default_value_t = 1000)]
    pub kustomer_rate_limit: u32,

    /// Write calls, chats and voicemails to Kustomer (`false`: the webhooks only reach the
    /// adapters).
    #[arg(long, env = "GATEWAY_CRM_SYNC", default_value_t = true, action = clap::ArgAction::Set)]
    pub crm_sync: bool,

    /// Country of phone numbers written without a country code (ISO 3166 alpha-2).
    #[arg(long, env = "GATEWAY_CRM_DEFAULT_COUNTRY", default_value = "US")]
    pub crm_default_country: String,

    /// Operations run at once (across sessions).
    #[arg(long, env = "GATEWAY_CRM_WORKERS", default_value_t = 8, value_parser = clap::value_parser!(u32).range(1..=64))]
    pub crm_workers: u32,

    /// How long an operation that keeps failing (Kustomer errors, timeouts) is retried before
    /// it becomes a dead letter, in hours. Time while the circuit breaker is open does not
    /// count.
    #[arg(long, env = "GATEWAY_CRM_RETRY_HOURS", default_value_t = 24, value_parser = clap::value_parser!(u32).range(1..=720))]
    pub crm_retry_hours: u32,

    /// While the circuit breaker is open (Kustomer refuses the API key, or keeps failing), how
    /// often one operation is let through to see whether Kustomer answers again, in seconds.
    #[arg(long, env = "GATEWAY_CRM_BREAKER_PROBE_SECONDS", default_value_t = 30, value_parser = clap::value_parser!(u32).range(1..=3600))]
    pub crm_breaker_probe_seconds: u32,

    /// Hosts the gateway may download recordings and shared files from, besides the CCAI
    /// tenant's own (e.g. the storage host of the tenant's external storage),
    /// comma-separated. Redirects elsewhere, and private or loopback addresses (unless the
    /// tenant itself is on loopback, as in the demo), are refused.
    #[arg(long, env = "GATEWAY_FILE_HOSTS", value_delimiter = ',')]
    pub file_hosts: Vec<String>,

    /// The outbox's clock (tests move it forward).
    #[arg(skip)]
    pub clock: crate::clock::Clock,
}

impl CrmConfig {
    /// Off, for tests that do not look at Kustomer.
    pub fn for_tests() -> Self {
        CrmConfig {
            kustomer_url: "http://127.0.0.1:8710".into(),
            kustomer_api_key: Secret::new("sim-kustomer-key"),
            kustomer_rate_limit: 1000,
            crm_sync: false,
            crm_default_country: "US".into(),
            crm_workers: 8,
            crm_retry_hours: 24,
            crm_breaker_probe_seconds: 30,
            file_hosts: Vec::new(),
            clock: crate::clock::Clock::default(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_run_the_demo() {
        let config = Config::try_parse_from(["adapter-gateway"]).unwrap();
        assert_eq!(config.listen, "127.0.0.1:8700".parse().unwrap());
        assert_eq!(config.data_dir, PathBuf::from("data/gateway"));
        assert!(config.widget_dir.is_none());
        assert!(config.allowed_origins.is_empty());
        assert_eq!(
            config
                .kustomer_origins
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>(),
            ["http://127.0.0.1:8720"],
            "the demo's host emulator"
        );
        assert_eq!(
            (config.max_streams_per_agent, config.max_streams_per_address),
            (16, 64)
        );
    }

    #[test]
    fn kustomer_origins_take_wildcards_and_refuse_what_is_not_an_origin() {
        let config = Config::try_parse_from([
            "adapter-gateway",
            "--kustomer-origins",
            "https://*.kustomerapp.com,https://acme.example:8443",
        ])
        .unwrap();
        assert_eq!(
            config
                .kustomer_origins
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>(),
            ["https://*.kustomerapp.com", "https://acme.example:8443"]
        );
        for bad in [
            "*",
            "https://acme.kustomerapp.com/app",
            "acme.kustomerapp.com",
            "https://*.com",
            "https://a.example; script-src *",
            "",
        ] {
            let error = Config::try_parse_from(["adapter-gateway", "--kustomer-origins", bad])
                .expect_err(bad);
            assert!(
                error.to_string().contains("--kustomer-origins"),
                "{bad}: {error}"
            );
        }
    }

    #[test]
    fn flags_override_defaults() {
        let config = Config::try_parse_from([
            "adapter-gateway",
            "--listen",
            "0.0.0.0:9000",
            "--allowed-origins",
            "https://a.example,https://b.example",
        ])
        .unwrap();
        assert_eq!(config.listen.port(), 9000);
        assert_eq!(
            config.allowed_origins,
            ["https://a.example", "https://b.example"]
        );
    }

    #[test]
    fn agents_file_and_dev_sign_in_exclude_each_other() {
        let error = Config::try_parse_from([
            "adapter-gateway",
            "--agents-file",
            "a.json",
            "--dev-sign-in",
        ])
        .unwrap_err();
        assert!(error.to_string().contains("cannot be used with"), "{error}");
        let config = Config::try_parse_from(["adapter-gateway", "--ccai-token", "t0k3n"]).unwrap();
        assert!(
            !format!("{config:?}").contains("t0k3n"),
            "the token never prints"
        );
    }

    #[test]
    fn webhook_credentials_are_optional_and_the_password_never_prints() {
        let config = Config::try_parse_from(["adapter-gateway"]).unwrap();
        assert_eq!(
            (config.call_webhook_user, config.call_webhook_password),
            (None, None)
        );
        assert!(
            !config.ccai_extension,
            "the extension is off for a real tenant"
        );
        let config = Config::try_parse_from([
            "adapter-gateway",
            "--call-webhook-user",
            "ccai",
            "--call-webhook-password",
            "s3cr3t-hook",
            "--chat-webhook-user",
            "ccai-chat",
            "--chat-webhook-password",
            "s3cr3t-chat",
        ])
        .unwrap();
        assert_eq!(config.call_webhook_user.as_deref(), Some("ccai"));
        assert_eq!(config.chat_webhook_user.as_deref(), Some("ccai-chat"));
        let printed = format!("{config:?}");
        assert!(!printed.contains("s3cr3t-hook") && !printed.contains("s3cr3t-chat"));
    }

    #[test]
    fn secrets_never_print() {
        let secret: Secret = "tenant-token".parse().unwrap();
        assert_eq!(format!("{secret:?} {secret}"), "*** ***");
        assert_eq!(secret.expose(), "tenant-token");
    }

    #[test]
    fn only_loopback_gateways_on_loopback_tenants_are_demos() {
        let local: SocketAddr = "127.0.0.1:8700".parse().unwrap();
        let open: SocketAddr = "0.0.0.0:8700".parse().unwrap();
        assert!(is_loopback(local, "http://127.0.0.1:8710"));
        assert!(is_loopback(local, "http://localhost:8710"));
        assert!(is_loopback(
            "[::1]:8700".parse().unwrap(),
            "http://[::1]:8710"
        ));
        assert!(!is_loopback(open, "http://127.0.0.1:8710"));
        assert!(!is_loopback(local, "https://acme.uc1.ccaiplatform.com"));
        assert!(!is_loopback(local, "http://127.0.0.1.example.com"));
        assert!(!is_loopback(local, "not a url"));
    }

    #[test]
    fn a_bad_address_is_a_clear_error() {
        let error = Config::try_parse_from(["adapter-gateway", "--listen", "nowhere"]).unwrap_err();
        assert!(error.to_string().contains("--listen"), "{error}");
    }
}
