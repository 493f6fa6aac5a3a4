//! The gateway against an attacker: each test is one attack tried on a running gateway (and
//! the simulator), named after it, and asserts the refusal. Figures (the `/healthz` latency
//! during a sign-in flood, sign-in throughput) are measured by `scripts/bench/signin.sh`, not
//! here.

mod support;

use std::{
    net::SocketAddr,
    path::PathBuf,
    sync::{
        atomic::{AtomicUsize, Ordering},
        Arc,
    },
    time::{Duration, Instant},
};

use adapter_gateway::{
    config::Config,
    files::{Downloads, FilePolicy},
    Gateway, GatewayError,
};
use argon2::{password_hash::SaltString, Argon2, PasswordHasher};
use reqwest::StatusCode;
use serde_json::{json, Value};
use support::{call, code, eventually, ok, Start};

const ADA: &str = "ada.lovelace@example.com";
const GRACE: &str = "grace.hopper@example.com";
const PASSWORD: &str = "correct horse battery staple";

/// An agents file with Ada and Grace, both with [`PASSWORD`], in a fresh folder.
fn agents_file(name: &str, emails: &[&str]) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("adapter-attacks-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let salt = SaltString::from_b64("c29tZXNhbHRzb21lc2FsdA").unwrap();
    let hash = Argon2::default()
        .hash_password(PASSWORD.as_bytes(), &salt)
        .unwrap()
        .to_string();
    let entries: Vec<Value> = emails
        .iter()
        .map(|email| json!({"email": email, "password_hash": hash}))
        .collect();
    let path = dir.join("agents.json");
    std::fs::write(&path, serde_json::to_string(&entries).unwrap()).unwrap();
    path
}

fn with_agents(config: &mut Config, file: PathBuf) {
    config.dev_sign_in = false;
    config.agents_file = Some(file);
}

fn sign_in_request(gateway: &str, email: &str, password: &str) -> reqwest::RequestBuilder {
    reqwest::Client::new()
        .post(format!("{gateway}/api/v1/sessions"))
        .json(&json!({"email": email, "password": password, "kustomer_user": {"id": "x", "email": email}}))
}

fn retry_after(response: &reqwest::Response) -> Option<u64> {
    response
        .headers()
        .get(reqwest::header::RETRY_AFTER)?
        .to_str()
        .ok()?
        .parse()
        .ok()
}

#[tokio::test]
async fn development_sign_in_refuses_to_start_off_loopback() {
    let dir = std::env::temp_dir().join(format!("adapter-attacks-dev-{}", std::process::id()));
    let open = Config::for_tests("0.0.0.0:0".parse().unwrap(), dir.clone());
    assert!(open.dev_sign_in);
    assert!(matches!(
        Gateway::start(open).await,
        Err(GatewayError::DevSignInExposed)
    ));
    let mut real_tenant = Config::for_tests("127.0.0.1:0".parse().unwrap(), dir);
    real_tenant.ccai_url = "https://acme.uc1.ccaiplatform.com".into();
    match Gateway::start(real_tenant).await {
        Err(error @ GatewayError::DevSignInExposed) => {
            assert!(error.to_string().contains("--agents-file"), "{error}")
        }
        Err(other) => panic!("refused for another reason: {other}"),
        Ok(_) => panic!("development sign-in started against a real tenant"),
    }
}

#[tokio::test]
async fn a_sign_in_flood_runs_no_hash_on_the_async_workers() {
    let file = agents_file("flood", &[ADA]);
    let running = Start::new("attack-flood")
        .run(|c| {
            with_agents(c, file);
            c.sign_in_per_minute = 10_000;
        })
        .await;
    let gateway = running.gateway_url();
    // 24 wrong passwords of as many emails at once: each costs a full password hash.
    let flood: Vec<_> = (0..24)
        .map(|i| {
            let request = sign_in_request(&gateway, &format!("nobody{i}@example.com"), "guess");
            tokio::spawn(async move { request.send().await.map(|r| r.status()) })
        })
        .collect();
    let mut slowest = Duration::ZERO;
    let client = reqwest::Client::new();
    while !flood.iter().all(|f| f.is_finished()) {
        let started = Instant::now();
        ok(
            "healthz during the flood",
            client.get(format!("{gateway}/healthz")),
        )
        .await;
        slowest = slowest.max(started.elapsed());
    }
    for attempt in flood {
        let status = attempt.await.unwrap().unwrap();
        assert!(
            status == StatusCode::UNAUTHORIZED || status == StatusCode::TOO_MANY_REQUESTS,
            "{status}"
        );
    }
    // A functional bound, far above the figures (`scripts/bench/signin.sh`): the 6 s it took
    // when the hashes ran on the async workers.
    assert!(
        slowest < Duration::from_secs(2),
        "/healthz took {slowest:?} during the flood"
    );
}

#[tokio::test]
async fn timing_does_not_tell_who_is_in_the_agents_file() {
    let file = agents_file("oracle", &[ADA]);
    let running = Start::new("attack-oracle")
        .run(|c| with_agents(c, file))
        .await;
    let gateway = running.gateway_url();
    let time = |email: &'static str| {
        let gateway = gateway.clone();
        async move {
            let started = Instant::now();
            let (status, body) = call(sign_in_request(&gateway, email, "wrong")).await;
            assert_eq!(
                (status, code(&body)),
                (StatusCode::UNAUTHORIZED, "bad_credentials")
            );
            started.elapsed()
        }
    };
    let mut known = Vec::new();
    let mut unknown = Vec::new();
    for _ in 0..3 {
        known.push(time(ADA).await);
        unknown.push(time("stranger@example.com").await);
    }
    known.sort();
    unknown.sort();
    // Before: 1 ms for an unknown email, ~600 ms for a known one. Both now cost a hash.
    assert!(
        unknown[1] * 3 > known[1],
        "unknown emails answer in {unknown:?}, known ones in {known:?}"
    );
}

#[tokio::test]
async fn guessing_a_password_is_cut_off_per_email() {
    let file = agents_file("guess", &[ADA, GRACE]);
    let running = Start::new("attack-guess")
        .run(|c| with_agents(c, file))
        .await;
    let gateway = running.gateway_url();
    // Five wrong passwords a minute are let through; the sixth is answered, and ends the
    // guessing.
    for guess in 0..6 {
        let (status, body) = call(sign_in_request(&gateway, ADA, &format!("guess{guess}"))).await;
        assert_eq!(
            (status, code(&body)),
            (StatusCode::UNAUTHORIZED, "bad_credentials"),
            "guess {guess}"
        );
    }
    // Over the quota, even the right password is not tried.
    let refused = sign_in_request(&gateway, ADA, PASSWORD)
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), StatusCode::TOO_MANY_REQUESTS);
    let wait = retry_after(&refused).expect("a Retry-After");
    assert!((1..=60).contains(&wait), "Retry-After {wait}");
    let body: Value = refused.json().await.unwrap();
    assert_eq!(code(&body), "too_many_attempts");
    // Another agent is not locked out by it.
    ok("Grace signs in", sign_in_request(&gateway, GRACE, PASSWORD)).await;
}

#[tokio::test]
async fn guesses_spread_over_two_replicas_are_cut_off_together() {
    if std::env::var_os("GATEWAY_TEST_DATABASE_URL").is_none() {
        eprintln!("skipped: replicas share a PostgreSQL store (scripts/test.sh runs this again on PostgreSQL)");
        return;
    }
    let file = agents_file("guess-replicas", &[ADA]);
    let mut running = Start::new("attack-guess-replicas")
        .run(|c| with_agents(c, file))
        .await;
    let first = running.gateway_url();
    let second = running.start_replica().await;
    // Three wrong passwords on each replica: six in all, one over the five a minute.
    for guess in 0..6 {
        let gateway = if guess % 2 == 0 { &first } else { &second };
        let (status, body) = call(sign_in_request(gateway, ADA, &format!("guess{guess}"))).await;
        assert_eq!(
            (status, code(&body)),
            (StatusCode::UNAUTHORIZED, "bad_credentials"),
            "guess {guess}"
        );
    }
    for gateway in [&first, &second] {
        let refused = sign_in_request(gateway, ADA, PASSWORD)
            .send()
            .await
            .unwrap();
        assert_eq!(
            refused.status(),
            StatusCode::TOO_MANY_REQUESTS,
            "{gateway} refuses the right password too"
        );
    }
}

#[tokio::test]
async fn a_flood_of_sign_ins_from_one_address_is_answered_429() {
    let running = Start::new("attack-address")
        .run(|c| c.sign_in_per_minute = 6)
        .await;
    let gateway = running.gateway_url();
    for attempt in 0..6 {
        let (status, body) = call(sign_in_request(&gateway, "not-an-email", "")).await;
        assert_eq!(
            (status, code(&body)),
            (StatusCode::BAD_REQUEST, "invalid_email"),
            "attempt {attempt} is looked at"
        );
    }
    let refused = sign_in_request(&gateway, ADA, "").send().await.unwrap();
    assert_eq!(refused.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(retry_after(&refused).is_some());
}

/// Sign-ins with `X-Forwarded-For: {chain}`: each answers its status.
async fn forwarded_sign_ins(gateway: &str, chain: &str, n: usize) -> Vec<StatusCode> {
    let mut statuses = Vec::new();
    for _ in 0..n {
        let response = sign_in_request(gateway, "not-an-email", "")
            .header("x-forwarded-for", chain)
            .send()
            .await
            .unwrap();
        statuses.push(response.status());
    }
    statuses
}

#[tokio::test]
async fn behind_a_trusted_proxy_each_client_has_its_own_sign_in_budget() {
    // The test's connections come from 127.0.0.1: here, the load balancer in front.
    let running = Start::new("attack-proxy")
        .run(|c| {
            c.sign_in_per_minute = 3;
            c.trusted_proxies = vec!["127.0.0.1/32".parse().unwrap()];
        })
        .await;
    let gateway = running.gateway_url();
    let looked_at = StatusCode::BAD_REQUEST;
    let refused = StatusCode::TOO_MANY_REQUESTS;
    assert_eq!(
        forwarded_sign_ins(&gateway, "198.51.100.1", 4).await,
        [looked_at, looked_at, looked_at, refused],
        "one client over its budget"
    );
    assert_eq!(
        forwarded_sign_ins(&gateway, "198.51.100.2", 1).await,
        [looked_at],
        "another client behind the same proxy is not held up by it"
    );
    // A client that writes its own header gets nothing fresh: the proxy appended the address
    // it really came from.
    assert_eq!(
        forwarded_sign_ins(&gateway, "203.0.113.77, 198.51.100.1", 1).await,
        [refused]
    );
}

#[tokio::test]
async fn a_forwarded_address_from_anyone_but_a_trusted_proxy_is_ignored() {
    let running = Start::new("attack-forwarded")
        .run(|c| c.sign_in_per_minute = 3)
        .await;
    let gateway = running.gateway_url();
    let mut statuses = Vec::new();
    for client in [
        "198.51.100.1",
        "198.51.100.2",
        "198.51.100.3",
        "198.51.100.4",
    ] {
        statuses.extend(forwarded_sign_ins(&gateway, client, 1).await);
    }
    assert_eq!(
        statuses,
        [
            StatusCode::BAD_REQUEST,
            StatusCode::BAD_REQUEST,
            StatusCode::BAD_REQUEST,
            StatusCode::TOO_MANY_REQUESTS
        ],
        "a new address in the header is not a new budget"
    );
}

#[tokio::test]
async fn sign_ins_do_not_read_the_agent_directory_each_time() {
    let running = Start::new("attack-directory")
        .run(|c| c.sign_in_per_minute = 10_000)
        .await;
    let gateway = running.gateway_url();
    let simulator = running.simulator_url();
    let directory_reads = || support::directory_reads(&simulator);
    let before = directory_reads().await;
    // 100 sign-ins of emails the tenant does not know: each is a miss of the cached directory.
    for i in 0..100 {
        let email = format!("nobody{i}@example.com");
        let (status, body) = call(
            reqwest::Client::new()
                .post(format!("{gateway}/api/v1/sessions"))
                .json(&json!({"email": email, "kustomer_user": {"id": "x", "email": email}})),
        )
        .await;
        assert_eq!(
            (status, code(&body)),
            (StatusCode::FORBIDDEN, "unknown_agent")
        );
    }
    let misses = directory_reads().await - before;
    // A miss reads the directory again at most every 5 s: the test runs for a few seconds.
    assert!(
        misses <= 3,
        "100 sign-ins of strangers read the directory {misses} times"
    );
    // And 30 sign-ins at once of agents it knows, each shown its current status: they share
    // the reads in flight, one at a time. Each CCAI request takes 300 ms here, so that the
    // sign-ins surely meet while a read is in flight (as a shift's start does on a real tenant).
    ok(
        "slow CCAI answers",
        reqwest::Client::new()
            .post(format!("{}/_sim/faults", running.simulator_url()))
            .json(&json!({"latency_ms": 300})),
    )
    .await;
    let at_once: Vec<_> = (0..30)
        .map(|i| {
            let email = [ADA, GRACE, "alan.turing@example.com"][i % 3];
            let gateway = gateway.clone();
            tokio::spawn(async move { support::sign_in(&gateway, email).await })
        })
        .collect();
    for sign_in in at_once {
        sign_in.await.unwrap();
    }
    let shared = directory_reads().await - before - misses;
    assert!(
        shared <= 6,
        "30 sign-ins at once read the directory {shared} times"
    );
}

#[tokio::test]
async fn parallel_refreshes_of_one_token_leave_exactly_one_live_token() {
    let running = Start::new("attack-refresh").run(|_| {}).await;
    let gateway = running.gateway_url();
    let token = support::sign_in(&gateway, ADA).await;
    let refreshes: Vec<_> = (0..8)
        .map(|_| {
            let request = reqwest::Client::new()
                .post(format!("{gateway}/api/v1/sessions/refresh"))
                .bearer_auth(&token);
            tokio::spawn(async move { call(request).await })
        })
        .collect();
    let mut new_tokens = Vec::new();
    for refresh in refreshes {
        let (status, body) = refresh.await.unwrap();
        match status {
            StatusCode::OK => new_tokens.push(body["token"].as_str().unwrap().to_owned()),
            StatusCode::UNAUTHORIZED => assert_eq!(code(&body), "session_expired"),
            other => panic!("refresh answered {other} {body}"),
        }
    }
    assert_eq!(new_tokens.len(), 1, "live tokens after 8 refreshes");
    let me = |t: &str| {
        reqwest::Client::new()
            .get(format!("{gateway}/api/v1/me"))
            .bearer_auth(t)
    };
    assert_eq!(call(me(&token)).await.0, StatusCode::UNAUTHORIZED);
    ok("the new token works", me(&new_tokens[0])).await;
}

#[tokio::test]
async fn an_agent_removed_from_the_agents_file_is_out_after_a_restart() {
    let data = std::env::temp_dir().join(format!("adapter-attacks-removed-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&data);
    let both = agents_file("removed-both", &[ADA, GRACE]);
    let mut running = Start::new("attack-removed")
        .run(|c| {
            with_agents(c, both);
            c.data_dir = data.clone();
        })
        .await;
    let body = ok(
        "Ada signs in",
        sign_in_request(&running.gateway_url(), ADA, PASSWORD),
    )
    .await;
    let token = body["token"].as_str().unwrap().to_owned();
    running.stop_gateway().await;
    let grace_only = agents_file("removed-grace", &[GRACE]);
    let running = Start::new("attack-removed-again")
        .run(|c| {
            with_agents(c, grace_only);
            c.data_dir = data.clone();
        })
        .await;
    let gateway = running.gateway_url();
    for (what, request) in [
        (
            "refresh",
            reqwest::Client::new().post(format!("{gateway}/api/v1/sessions/refresh")),
        ),
        (
            "me",
            reqwest::Client::new().get(format!("{gateway}/api/v1/me")),
        ),
    ] {
        let (status, body) = call(request.bearer_auth(&token)).await;
        assert_eq!(
            (status, code(&body)),
            (StatusCode::UNAUTHORIZED, "session_expired"),
            "{what}"
        );
    }
}

#[tokio::test]
async fn a_sign_in_ends_at_its_absolute_lifetime_however_often_refreshed() {
    let dir = std::env::temp_dir().join(format!("adapter-attacks-lifetime-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let store = adapter_gateway::store::Store::for_tests(&dir)
        .await
        .unwrap();
    let sessions = adapter_gateway::sessions::Sessions::new(
        store.pool(),
        adapter_gateway::sessions::Limits {
            ttl: Duration::from_secs(600),
            max_age: Duration::from_millis(1500),
            per_agent: 10,
        },
    );
    let issued = sessions.issue(ADA, 101, "kus-1").await.unwrap();
    let refreshed = sessions
        .refresh(&issued.token, |_| true)
        .await
        .unwrap()
        .expect("refreshed within the lifetime");
    // The refresh period is 10 minutes, but the sign-in ends 1.5 s after it began.
    assert!(refreshed.session.expires_at_ms <= issued.session.expires_at_ms);
    let token = refreshed.token.clone();
    eventually("the session to end", Duration::from_secs(10), || {
        let sessions = sessions.clone();
        let token = token.clone();
        async move {
            match sessions.find(&token).await.unwrap() {
                None => Ok(()),
                Some(session) => Err(format!("still live until {}", session.expires_at_ms)),
            }
        }
    })
    .await;
    assert!(sessions
        .refresh(&refreshed.token, |_| true)
        .await
        .unwrap()
        .is_none());
}

#[tokio::test]
async fn an_agent_holds_at_most_the_configured_live_sessions() {
    let running = Start::new("attack-cap")
        .run(|c| c.sessions_per_agent = 3)
        .await;
    let gateway = running.gateway_url();
    let mut tokens = Vec::new();
    for _ in 0..5 {
        tokens.push(support::sign_in(&gateway, ADA).await);
    }
    let mut live = Vec::new();
    for token in &tokens {
        let (status, _) = call(
            reqwest::Client::new()
                .get(format!("{gateway}/api/v1/me"))
                .bearer_auth(token),
        )
        .await;
        live.push(status == StatusCode::OK);
    }
    assert_eq!(
        live,
        [false, false, true, true, true],
        "the oldest end first"
    );
}

#[test]
fn help_never_prints_secrets_from_the_environment() {
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_adapter-gateway"))
        .arg("--help")
        .env("GATEWAY_CCAI_TOKEN", "t0k3n-from-env")
        .env("GATEWAY_KUSTOMER_API_KEY", "k3y-from-env")
        .env("GATEWAY_CALL_WEBHOOK_PASSWORD", "h00k-from-env")
        .env(
            "GATEWAY_DATABASE_URL",
            "postgres://adapter:pg-pa55-from-env@db.internal/adapter",
        )
        .output()
        .unwrap();
    let help = String::from_utf8_lossy(&output.stdout);
    assert!(help.contains("--ccai-token"), "{help}");
    for secret in [
        "t0k3n-from-env",
        "k3y-from-env",
        "h00k-from-env",
        "pg-pa55-from-env",
    ] {
        assert!(!help.contains(secret), "--help shows {secret}");
    }
}

#[tokio::test]
async fn an_unreachable_tenant_is_not_named_to_callers() {
    // A port nothing listens on: every CCAI request fails to connect.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let address = closed.local_addr().unwrap();
    drop(closed);
    let running = Start::new("attack-502")
        .run(|c| c.ccai_url = format!("http://{address}"))
        .await;
    let (status, body) = call(
        reqwest::Client::new()
            .post(format!("{}/api/v1/sessions", running.gateway_url()))
            .json(&json!({"email": ADA, "kustomer_user": {"id": "x", "email": ADA}})),
    )
    .await;
    assert_eq!(
        (status, code(&body)),
        (StatusCode::BAD_GATEWAY, "ccai_unavailable")
    );
    let text = body.to_string();
    assert!(
        !text.contains(&address.to_string()) && !text.contains("127.0.0.1"),
        "the answer names the tenant: {text}"
    );
}

#[tokio::test]
async fn a_client_request_id_is_neither_echoed_nor_logged() {
    let running = Start::new("attack-request-id").run(|_| {}).await;
    let response = reqwest::Client::new()
        .get(format!("{}/healthz", running.gateway_url()))
        .header("x-request-id", "forged id=admin")
        .send()
        .await
        .unwrap();
    let id = response
        .headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .expect("the gateway's own request id");
    assert_ne!(id, "forged id=admin");
    assert!(id.bytes().all(|b| b.is_ascii_digit()), "{id}");
    assert_eq!(
        response
            .headers()
            .get("referrer-policy")
            .and_then(|v| v.to_str().ok()),
        Some("no-referrer")
    );
}

#[tokio::test]
async fn oversized_or_free_text_call_fields_never_go_upstream() {
    let running = Start::new("attack-fields").run(|_| {}).await;
    let gateway = running.gateway_url();
    let token = support::sign_in(&gateway, ADA).await;
    let place = |body: Value| {
        reqwest::Client::new()
            .post(format!("{gateway}/api/v1/calls"))
            .bearer_auth(&token)
            .json(&body)
    };
    for body in [
        json!({"number": "+14155550100", "conversation_id": "a".repeat(60_000)}),
        json!({"number": "+14155550100", "conversation_id": "../../admin"}),
        json!({"number": "+14155550100", "lang": "English, and ignore the agent"}),
    ] {
        let response = place(body).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(
            response
                .headers()
                .get("cache-control")
                .and_then(|v| v.to_str().ok()),
            Some("no-store")
        );
        let body: Value = response.json().await.unwrap();
        assert_eq!(code(&body), "invalid_fields", "{body}");
    }
    let state = ok(
        "simulator state",
        reqwest::Client::new().get(format!("{}/_sim/state", running.simulator_url())),
    )
    .await;
    let calls: Vec<&Value> = state["requests"]
        .as_array()
        .expect("recorded requests")
        .iter()
        .filter(|r| r["method"] == "POST" && r["path"].as_str().is_some_and(|p| p.contains("call")))
        .collect();
    assert!(calls.is_empty(), "calls reached the tenant: {calls:?}");
}

#[tokio::test]
async fn wrong_webhook_passwords_are_throttled_per_address() {
    let mut start = Start::new("attack-webhooks");
    start.webhooks = true;
    let running = start.run(|c| c.webhook_failures_per_minute = 3).await;
    let url = format!("{}/webhooks/ccai/calls", running.gateway_url());
    let send = |password: &str| {
        reqwest::Client::new()
            .post(&url)
            .basic_auth(support::HOOK_USER, Some(password))
            .json(&json!([]))
            .send()
    };
    for guess in 0..3 {
        assert_eq!(
            send(&format!("guess{guess}")).await.unwrap().status(),
            StatusCode::UNAUTHORIZED
        );
    }
    assert_eq!(
        send("guess3").await.unwrap().status(),
        StatusCode::UNAUTHORIZED,
        "the failure that goes over the quota is still answered 401"
    );
    // Over the quota: refused before the credentials are compared, the right ones too.
    let refused = send(support::HOOK_PASSWORD).await.unwrap();
    assert_eq!(refused.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(retry_after(&refused).is_some());
}

/// A server on loopback that counts its requests and answers each with `answer`.
async fn counting_server(
    answer: fn(&str) -> axum::response::Response,
) -> (SocketAddr, Arc<AtomicUsize>) {
    let hits = Arc::new(AtomicUsize::new(0));
    let counted = Arc::clone(&hits);
    let app = axum::Router::new().fallback(move |uri: axum::http::Uri| {
        let counted = Arc::clone(&counted);
        async move {
            counted.fetch_add(1, Ordering::SeqCst);
            answer(uri.path())
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    (address, hits)
}

fn recording(_: &str) -> axum::response::Response {
    use axum::response::IntoResponse;
    "RIFF....WAVE".into_response()
}

#[tokio::test]
async fn a_recording_url_on_a_private_address_is_not_fetched() {
    let (internal, hits) = counting_server(recording).await;
    // A real tenant; the operator even listed the internal host by mistake.
    let downloads = Downloads::new(
        FilePolicy::new(
            "https://acme.uc1.ccaiplatform.com",
            &["127.0.0.1".into(), "localhost".into()],
        ),
        Duration::from_secs(5),
    )
    .unwrap();
    for url in [
        format!("https://127.0.0.1:{}/secret", internal.port()),
        format!("https://localhost:{}/secret", internal.port()),
        format!("http://localhost:{}/secret", internal.port()),
        "https://169.254.169.254/latest/meta-data/".to_owned(),
        format!("https://evil.example/{}", internal.port()),
    ] {
        let error = downloads.fetch(&url).await.unwrap_err();
        assert!(!error.retryable(), "{url}: {error} would be retried");
    }
    assert_eq!(
        hits.load(Ordering::SeqCst),
        0,
        "the internal server was reached"
    );
}

#[tokio::test]
async fn a_recording_redirected_to_another_host_is_not_followed() {
    let (elsewhere, elsewhere_hits) = counting_server(recording).await;
    let to = format!("http://localhost:{}/secret", elsewhere.port());
    REDIRECT.set(Box::leak(to.into_boxed_str())).unwrap();
    let (tenant, _) = counting_server(|_| {
        use axum::response::IntoResponse;
        axum::response::Redirect::temporary(REDIRECT.get().unwrap()).into_response()
    })
    .await;
    // The demo's policy: the tenant on loopback, so only the host decides.
    let downloads = Downloads::new(
        FilePolicy::new(&format!("http://127.0.0.1:{}", tenant.port()), &[]),
        Duration::from_secs(5),
    )
    .unwrap();
    let error = downloads
        .fetch(&format!("http://127.0.0.1:{}/rec.wav", tenant.port()))
        .await
        .unwrap_err();
    assert!(error.to_string().contains("redirect"), "{error}");
    assert_eq!(elsewhere_hits.load(Ordering::SeqCst), 0);
}

static REDIRECT: std::sync::OnceLock<&'static str> = std::sync::OnceLock::new();

#[tokio::test]
async fn an_endless_recording_is_cut_off_at_the_cap_while_it_streams() {
    let (tenant, _) = counting_server(|_| {
        // 64 KiB chunks for ever, with no Content-Length to refuse up front.
        let chunk = axum::body::Bytes::from(vec![0u8; 64 * 1024]);
        let endless = futures_util::stream::repeat_with(move || {
            Ok::<_, std::convert::Infallible>(chunk.clone())
        });
        axum::response::Response::new(axum::body::Body::from_stream(endless))
    })
    .await;
    let downloads = Downloads::new(
        FilePolicy::new(&format!("http://127.0.0.1:{}", tenant.port()), &[]),
        Duration::from_secs(30),
    )
    .unwrap();
    let error = downloads
        .fetch(&format!("http://127.0.0.1:{}/rec.wav", tenant.port()))
        .await
        .unwrap_err();
    assert!(error.to_string().contains("larger than 20 MB"), "{error}");
}
