//! The CCAI Platform client: HTTP Basic with the tenant's subdomain and API token (which never
//! leave the gateway), one shared budget of the tenant's 10 requests per second, retries with
//! backoff for what is safe to retry, and caches for what changes rarely (agents, statuses).
//!
//! [`StatusSetter`] coalesces the status changes of many agents into one `agent_statuses` call
//! per status, and reads the per-agent results one by one.

use std::{
    collections::HashMap,
    future::Future,
    hash::{BuildHasher, Hasher},
    sync::Arc,
    time::{Duration, Instant},
};

use adapter_core::{backoff::Backoff, rate::TokenBucket};
use reqwest::Method;
use serde::{de::DeserializeOwned, Deserialize, Serialize};
use serde_json::{json, Value};
use tokio::sync::{mpsc, oneshot, Mutex};

use crate::secret::Secret;

impl From<CcaiError> for crate::error::Error {
    fn from(error: CcaiError) -> Self {
        use crate::error::{Code, Error};
        match error {
            CcaiError::Rejected(message) => Error::new(Code::CcaiRejected, message),
            other => {
                tracing::warn!(error = %other, "CCAI Platform error");
                Error::new(Code::CcaiUnavailable, other.to_string())
            }
        }
    }
}

/// Why a CCAI call failed, in words an agent or an admin can act on.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CcaiError {
    #[error("the CCAI Platform refused the gateway's credentials (check the tenant subdomain and API token)")]
    Unauthorized,
    #[error("the CCAI Platform tenant was not found (check the tenant URL and subdomain)")]
    NotFound,
    /// The platform's own message, e.g. "Agent is not available to take this call".
    #[error("{0}")]
    Rejected(String),
    /// 409: the request does not fit the current state (a call control on a call that has
    /// moved on); the platform's message.
    #[error("{0}")]
    Conflict(String),
    #[error("the CCAI Platform is limiting the gateway's requests; try again in a moment")]
    RateLimited { retry_after: Option<Duration> },
    #[error("the CCAI Platform failed (HTTP {status}); try again in a moment")]
    Upstream { status: u16 },
    #[error("the CCAI Platform did not answer in time")]
    Timeout,
    #[error("cannot reach the CCAI Platform: {0}")]
    Network(String),
    #[error("the CCAI Platform's answer could not be read: {0}")]
    Decode(String),
}

impl CcaiError {
    /// Whether trying again may succeed. A request the platform may have carried out is retried
    /// only when `idempotent`; a refused one (429) always.
    fn retryable(&self, idempotent: bool) -> bool {
        match self {
            CcaiError::RateLimited { .. } => true,
            CcaiError::Upstream { .. } | CcaiError::Timeout | CcaiError::Network(_) => idempotent,
            _ => false,
        }
    }
}

/// Whether the status with this id is set by the platform itself (see [`UserStatus::is_system`]).
pub fn is_system_status(id: i64) -> bool {
    adapter_core::status_policy::is_system_status(id)
}

/// A status of the tenant.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserStatus {
    pub id: i64,
    pub name: String,
    #[serde(default)]
    pub color: Option<String>,
}

impl UserStatus {
    /// Set by the platform itself (Missed Call, Wrap-up, In-call, In-chat, and the built-ins
    /// whose ids are not public): shown, never offered.
    pub fn is_system(&self) -> bool {
        is_system_status(self.id)
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
pub struct StatusRef {
    pub id: i64,
    #[serde(default)]
    pub name: Option<String>,
}

/// An agent, as the Manager API lists them.
#[derive(Clone, Debug, Deserialize)]
pub struct Agent {
    pub id: i64,
    pub email: String,
    #[serde(default)]
    pub status: Option<StatusRef>,
}

/// One agent's outcome of a status change: success is per agent.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
pub struct StatusResult {
    pub agent_id: i64,
    #[serde(default)]
    pub previous_status: Option<StatusRef>,
    #[serde(default)]
    pub current_status: Option<StatusRef>,
    /// Why it failed for this agent, e.g. "Agent can't be changed from system status 'In-call'".
    #[serde(default)]
    pub message: Option<String>,
}

/// An outbound call to place (click-to-call).
#[derive(Clone, Debug, Serialize)]
pub struct PlaceCall {
    pub agent_email: String,
    /// E.164.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub end_user_number: Option<String>,
    /// The Kustomer conversation; the platform prefers it over the number.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ticket_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lang: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
pub struct CallInfo {
    /// The platform's call id (a number in the Apps API's call object; text is accepted too).
    #[serde(deserialize_with = "platform_id")]
    pub id: String,
    #[serde(default)]
    pub status: Option<String>,
}

/// A platform id given as a number or as text, as text.
fn platform_id<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<String, D::Error> {
    match Value::deserialize(deserializer)? {
        Value::Number(n) => Ok(n.to_string()),
        Value::String(s)
            if !s.is_empty()
                && s.len() <= 64
                && s.chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_') =>
        {
            Ok(s)
        }
        other => Err(serde::de::Error::custom(format!(
            "a call id must be a number or an id, not {other}"
        ))),
    }
}

/// What placing a call did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CallPlaced {
    /// 201: the call is on its way.
    Created(CallInfo),
    /// 202: created, but the agent must finish it in the adapter (e.g. pick an outbound number).
    NeedsAgent(CallInfo),
}

/// What the gateway asks of the CCAI Platform. One real implementation, [`HttpCcai`]; tests
/// point it at the simulator.
pub trait CcaiApi: Send + Sync {
    fn user_statuses(&self) -> impl Future<Output = Result<Vec<UserStatus>, CcaiError>> + Send;
    fn agent_id(&self, email: &str) -> impl Future<Output = Result<Option<i64>, CcaiError>> + Send;
    fn set_status(
        &self,
        status: &str,
        agent_ids: &[i64],
    ) -> impl Future<Output = Result<Vec<StatusResult>, CcaiError>> + Send;
    fn place_call(
        &self,
        call: &PlaceCall,
    ) -> impl Future<Output = Result<CallPlaced, CcaiError>> + Send;
    /// The agent's current status, read fresh (not cached).
    fn agent_status(
        &self,
        agent_id: i64,
    ) -> impl Future<Output = Result<Option<StatusRef>, CcaiError>> + Send;
    /// The call controls the upstream offers (`GET /ext/call-control/v1/capabilities`, an
    /// extension the public API does not have: [`CcaiError::NotFound`] there).
    fn call_controls(&self) -> impl Future<Output = Result<Vec<String>, CcaiError>> + Send;
    /// Whether the tenant's request budget has room for a request now (one going out would not
    /// wait): [`StatusSetter`] sends a change at once then, and coalesces changes only while
    /// it has none.
    fn has_room(&self) -> bool;
    /// Applies a call control (`POST /ext/call-control/v1/{calls|chats}/{id}/{action}`); never
    /// retried.
    fn call_control(
        &self,
        what: &str,
        call_id: &str,
        action: &str,
        body: &Value,
    ) -> impl Future<Output = Result<Value, CcaiError>> + Send;
}

/// The tenant's request budget, shared by every request this gateway makes. It refills at the
/// tenant's rate but allows only half its burst: requests bunch up on the way (network jitter),
/// and the slack keeps them from arriving over the limit. Replicas on a PostgreSQL store also
/// share it through the store ([`RateBudget::share`]).
#[derive(Debug)]
pub struct RateBudget {
    bucket: std::sync::Mutex<TokenBucket>,
    per_second: u32,
    started: Instant,
    /// The store's `ccai_budget` row, when replicas share the tenant.
    shared: std::sync::OnceLock<sqlx::AnyPool>,
}

/// The shared budget's windows: a tenth of the tenant's requests per second in each, so that
/// no second, however it falls across the windows, holds more than the rate and one window.
const SHARED_WINDOW_MS: i64 = 100;

impl RateBudget {
    pub fn new(per_second: u32) -> Self {
        let per_second = per_second.max(1);
        RateBudget {
            bucket: std::sync::Mutex::new(TokenBucket::new((per_second / 2).max(1), per_second)),
            per_second,
            started: Instant::now(),
            shared: std::sync::OnceLock::new(),
        }
    }

    /// Replicas on one PostgreSQL store: from now on a request also takes its place in the
    /// store's count, which every replica draws from.
    pub fn share(&self, pool: sqlx::AnyPool) {
        let _ = self.shared.set(pool);
    }

    /// Waits for a place in the shared windows. Windows only move forward: a request delayed
    /// past its window (the process paused) cannot reset the count of a newer one; a window
    /// more than a second ahead (a clock stepped back) is taken as stale. A store that cannot be reached lets the request
    /// go within this replica's own budget (logged): the tenant answers 429 if it must, and
    /// the request is retried.
    async fn take_shared(&self, pool: &sqlx::AnyPool) {
        let per_window = i64::from(self.per_second.div_ceil(10));
        loop {
            let now = crate::clock::now_ms();
            let window = now - now.rem_euclid(SHARED_WINDOW_MS);
            let taken = sqlx::query(
                "UPDATE ccai_budget SET
                    used = CASE WHEN window_start_ms = $1 THEN used + 1 ELSE 1 END,
                    window_start_ms = $1
                 WHERE id = 1 AND (window_start_ms < $1 OR window_start_ms > $1 + 1000
                                   OR (window_start_ms = $1 AND used < $2))",
            )
            .bind(window)
            .bind(per_window)
            .execute(pool)
            .await;
            match taken {
                Ok(done) if done.rows_affected() == 1 => return,
                Ok(_) => {
                    let wait = (window + SHARED_WINDOW_MS - now).clamp(1, SHARED_WINDOW_MS);
                    tokio::time::sleep(Duration::from_millis(wait as u64)).await;
                }
                Err(error) => {
                    tracing::warn!(%error, "the shared CCAI budget cannot be read: this request goes within this replica's own");
                    return;
                }
            }
        }
    }

    /// Whether a request could be sent now without waiting (nothing is taken).
    pub fn has_room(&self) -> bool {
        let now_ms = self.started.elapsed().as_secs_f64() * 1000.0;
        self.bucket
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .has_token(now_ms)
    }

    /// Waits until a request may be sent.
    pub async fn acquire(&self) {
        loop {
            let now_ms = self.started.elapsed().as_secs_f64() * 1000.0;
            let taken = self
                .bucket
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner())
                .try_take(now_ms);
            if taken {
                if let Some(pool) = self.shared.get() {
                    self.take_shared(pool).await;
                }
                return;
            }
            tokio::time::sleep(Duration::from_secs_f64(1.0 / f64::from(self.per_second))).await;
        }
    }
}

/// How to reach the tenant.
#[derive(Clone, Debug)]
pub struct CcaiSettings {
    /// `https://{subdomain}.{domain}`, without a trailing slash.
    pub base_url: String,
    pub subdomain: String,
    pub token: Secret,
    /// Requests per second for the whole tenant.
    pub requests_per_second: u32,
    /// How long one request may take.
    pub timeout: Duration,
    /// Attempts per request, retries included.
    pub attempts: u32,
    pub backoff: Backoff,
    /// How long agents and statuses are cached.
    pub cache_for: Duration,
}

impl CcaiSettings {
    pub fn new(base_url: &str, subdomain: &str, token: Secret) -> Self {
        CcaiSettings {
            base_url: base_url.trim_end_matches('/').to_owned(),
            subdomain: subdomain.to_owned(),
            token,
            requests_per_second: 10,
            timeout: Duration::from_secs(10),
            attempts: 4,
            backoff: Backoff::default(),
            cache_for: Duration::from_secs(300),
        }
    }
}

struct Cached<T> {
    at: Instant,
    value: T,
}

/// The CCAI Platform over HTTP.
pub struct HttpCcai {
    http: reqwest::Client,
    settings: CcaiSettings,
    budget: RateBudget,
    agents: Mutex<Option<Cached<Vec<Agent>>>>,
    statuses: Mutex<Option<Cached<Vec<UserStatus>>>>,
}

impl std::fmt::Debug for HttpCcai {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpCcai")
            .field("base_url", &self.settings.base_url)
            .field("subdomain", &self.settings.subdomain)
            .finish_non_exhaustive()
    }
}

/// A uniform draw in `[0, 1)` for backoff jitter, without a random-number crate.
fn random_unit() -> f64 {
    let bits = std::collections::hash_map::RandomState::new()
        .build_hasher()
        .finish();
    (bits >> 11) as f64 / (1u64 << 53) as f64
}

fn platform_message(body: &[u8]) -> Option<String> {
    let value: Value = serde_json::from_slice(body).ok()?;
    value.get("message")?.as_str().map(str::to_owned)
}

impl HttpCcai {
    pub fn new(settings: CcaiSettings) -> Result<Self, CcaiError> {
        let http = reqwest::Client::builder()
            .timeout(settings.timeout)
            .user_agent(concat!(
                "ccai-kustomer-adapter-gateway/",
                env!("CARGO_PKG_VERSION")
            ))
            .build()
            .map_err(|e| CcaiError::Network(e.to_string()))?;
        Ok(HttpCcai {
            budget: RateBudget::new(settings.requests_per_second),
            http,
            settings,
            agents: Mutex::default(),
            statuses: Mutex::default(),
        })
    }

    /// Replicas on one PostgreSQL store share the tenant's budget through it.
    pub fn share_budget(&self, pool: sqlx::AnyPool) {
        self.budget.share(pool);
    }

    /// One request, within the budget, retried while `retryable`. Returns the status and body.
    async fn send(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
        idempotent: bool,
    ) -> Result<(u16, Vec<u8>), CcaiError> {
        let url = format!("{}{path}", self.settings.base_url);
        let mut attempt = 0;
        loop {
            attempt += 1;
            self.budget.acquire().await;
            let mut request = self
                .http
                .request(method.clone(), &url)
                .basic_auth(&self.settings.subdomain, Some(self.settings.token.expose()));
            if let Some(body) = body {
                request = request.json(body);
            }
            let outcome = match request.send().await {
                Ok(response) => {
                    crate::telemetry::upstream_request(
                        "ccai",
                        Some(response.status().as_u16()),
                        false,
                    );
                    Self::classify(response).await
                }
                Err(error) => {
                    crate::telemetry::upstream_request("ccai", None, error.is_timeout());
                    if error.is_timeout() {
                        Err(CcaiError::Timeout)
                    } else {
                        // Never the URL: the tenant's address is not for callers to see.
                        Err(CcaiError::Network(error.without_url().to_string()))
                    }
                }
            };
            match outcome {
                Err(error) if attempt < self.settings.attempts && error.retryable(idempotent) => {
                    let wait = match &error {
                        CcaiError::RateLimited {
                            retry_after: Some(after),
                        } => (*after).min(Duration::from_secs(10)),
                        _ => self.settings.backoff.delay(attempt, random_unit()),
                    };
                    tracing::warn!(%error, attempt, ?wait, path, "CCAI request failed; retrying");
                    tokio::time::sleep(wait).await;
                }
                outcome => return outcome,
            }
        }
    }

    async fn classify(response: reqwest::Response) -> Result<(u16, Vec<u8>), CcaiError> {
        let status = response.status().as_u16();
        let retry_after = response
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map(Duration::from_secs);
        let body = response
            .bytes()
            .await
            .map_err(|e| CcaiError::Network(e.without_url().to_string()))?
            .to_vec();
        match status {
            200..=299 => Ok((status, body)),
            401 | 403 => Err(CcaiError::Unauthorized),
            404 => Err(CcaiError::NotFound),
            429 => Err(CcaiError::RateLimited { retry_after }),
            409 => Err(CcaiError::Conflict(platform_message(&body).unwrap_or_else(
                || "the CCAI Platform refused the request in the call's current state".into(),
            ))),
            400..=499 => Err(CcaiError::Rejected(platform_message(&body).unwrap_or_else(
                || format!("the CCAI Platform refused the request (HTTP {status})"),
            ))),
            _ => Err(CcaiError::Upstream { status }),
        }
    }

    fn decode<T: DeserializeOwned>(body: &[u8]) -> Result<T, CcaiError> {
        serde_json::from_slice(body).map_err(|e| CcaiError::Decode(e.to_string()))
    }

    /// Every page of a Manager API list.
    async fn list<T: DeserializeOwned>(&self, path: &str) -> Result<Vec<T>, CcaiError> {
        const PER: usize = 100;
        let mut all = Vec::new();
        for page in 1.. {
            let (_, body) = self
                .send(
                    Method::GET,
                    &format!("{path}?page={page}&per={PER}"),
                    None,
                    true,
                )
                .await?;
            let items: Vec<T> = Self::decode(&body)?;
            let last = items.len() < PER;
            all.extend(items);
            if last || page >= 1_000 {
                break;
            }
        }
        Ok(all)
    }

    /// Forgets the cached statuses: the next read asks the platform.
    pub async fn forget_statuses(&self) {
        *self.statuses.lock().await = None;
    }

    fn fresh<T>(&self, cached: &Option<Cached<T>>) -> bool {
        cached
            .as_ref()
            .is_some_and(|c| c.at.elapsed() < self.settings.cache_for)
    }

    async fn agents_by_email(&self, refresh: bool) -> Result<HashMap<String, i64>, CcaiError> {
        let read = if refresh { Read::Refresh } else { Read::Cached };
        Ok(self
            .agents(read)
            .await?
            .into_iter()
            .map(|a| (a.email.to_lowercase(), a.id))
            .collect())
    }

    /// The agent directory (`GET /manager/api/v1/agents`, every page), as `read` asks. One
    /// read at a time: callers that arrive during a read share its result.
    pub async fn agents(&self, read: Read) -> Result<Vec<Agent>, CcaiError> {
        let mut cache = self.agents.lock().await;
        let recent = cache
            .as_ref()
            .is_some_and(|c| c.at.elapsed() < MIN_DIRECTORY_REFRESH);
        let stale = match read {
            Read::Cached => !self.fresh(&cache),
            Read::Refresh => !recent || !self.fresh(&cache),
            Read::Fresh => true,
            Read::Since(asked) => cache.as_ref().is_none_or(|c| c.at < asked),
        };
        if stale {
            // When the read began: what it says is at least as new as that.
            let began = Instant::now();
            let agents: Vec<Agent> = self.list("/manager/api/v1/agents").await?;
            *cache = Some(Cached {
                at: began,
                value: agents,
            });
        }
        Ok(cache.as_ref().map(|c| c.value.clone()).unwrap_or_default())
    }

    /// The agent's status from a directory read that began after this call: fresh, and shared
    /// by every sign-in waiting at the same time (one read in flight; those that arrive during
    /// it share the next), so a shift's start does not list the directory once per agent.
    pub async fn current_agent_status(
        &self,
        agent_id: i64,
    ) -> Result<Option<StatusRef>, CcaiError> {
        Ok(self
            .agents(Read::Since(Instant::now()))
            .await?
            .into_iter()
            .find(|a| a.id == agent_id)
            .and_then(|a| a.status))
    }

    /// The email of the agent with this platform id, from the directory (read again once when
    /// it does not know the id).
    pub async fn agent_email(&self, agent_id: i64) -> Result<Option<String>, CcaiError> {
        let find = |agents: Vec<Agent>| {
            agents
                .into_iter()
                .find(|a| a.id == agent_id)
                .map(|a| a.email.to_lowercase())
        };
        if let Some(email) = find(self.agents(Read::Cached).await?) {
            return Ok(Some(email));
        }
        Ok(find(self.agents(Read::Refresh).await?))
    }

    /// A session's details: the Manager API's call (`GET /manager/api/v1/calls/{id}`) or chat
    /// (`GET /manager/api/v1/chats/{id}`) resource, as its raw JSON (decoded by
    /// [`adapter_core::manager::decode_details`]). Within the tenant's budget, retried like
    /// every read.
    pub async fn session_details(
        &self,
        channel: adapter_core::agent_events::Channel,
        platform_id: &str,
    ) -> Result<Vec<u8>, CcaiError> {
        let what = match channel {
            adapter_core::agent_events::Channel::Voice => "calls",
            adapter_core::agent_events::Channel::Chat => "chats",
        };
        let id: String = platform_id
            .chars()
            .filter(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_')
            .collect();
        let (_, body) = self
            .send(
                Method::GET,
                &format!("/manager/api/v1/{what}/{id}"),
                None,
                true,
            )
            .await?;
        Ok(body)
    }
}

/// How fresh a directory read must be.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Read {
    /// The cached copy while it is fresh (minutes).
    Cached,
    /// Read again, unless someone did within [`MIN_DIRECTORY_REFRESH`] (a miss).
    Refresh,
    /// Read again now (the status refresher, which batches its reads itself).
    Fresh,
    /// A read that began at this instant or later: callers waiting together share the next
    /// read (a sign-in's current status, fresh however many sign in at once).
    Since(Instant),
}

/// The shortest time between two reads of the agent directory asked for by a miss or a
/// refresh: sign-ins and webhooks for unknown agents cannot flood the tenant's budget.
pub const MIN_DIRECTORY_REFRESH: Duration = Duration::from_secs(5);

impl CcaiApi for HttpCcai {
    fn has_room(&self) -> bool {
        self.budget.has_room()
    }

    /// The tenant's statuses (cached).
    async fn user_statuses(&self) -> Result<Vec<UserStatus>, CcaiError> {
        let mut cache = self.statuses.lock().await;
        if !self.fresh(&cache) {
            let statuses = self.list("/manager/api/v1/user_statuses").await?;
            *cache = Some(Cached {
                at: Instant::now(),
                value: statuses,
            });
        }
        Ok(cache.as_ref().map(|c| c.value.clone()).unwrap_or_default())
    }

    /// The agent id for an email (case-insensitive), from the cached directory; a miss refreshes
    /// it once, for agents added since.
    async fn agent_id(&self, email: &str) -> Result<Option<i64>, CcaiError> {
        let email = email.trim().to_lowercase();
        if let Some(id) = self.agents_by_email(false).await?.get(&email) {
            return Ok(Some(*id));
        }
        Ok(self.agents_by_email(true).await?.get(&email).copied())
    }

    /// Sets `status` (by name) for `agent_ids` in one call. Setting a status twice is harmless,
    /// so this is retried like a read.
    async fn set_status(
        &self,
        status: &str,
        agent_ids: &[i64],
    ) -> Result<Vec<StatusResult>, CcaiError> {
        let body = json!({ "status": status, "agent_ids": agent_ids, "team_ids": [] });
        let (_, body) = self
            .send(
                Method::POST,
                "/apps/api/v1/agent_statuses",
                Some(&body),
                true,
            )
            .await?;
        Self::decode(&body)
    }

    /// Places an outbound call. Never retried once the platform may have placed it (only a 429,
    /// which refuses the request, is retried): a second call to a customer is worse than an error.
    async fn place_call(&self, call: &PlaceCall) -> Result<CallPlaced, CcaiError> {
        let mut body = serde_json::to_value(call).map_err(|e| CcaiError::Decode(e.to_string()))?;
        body["call_type"] = json!("Voice Outbound (API)");
        let (status, body) = self
            .send(Method::POST, "/apps/api/v1/calls", Some(&body), false)
            .await?;
        let info: CallInfo = Self::decode(&body)?;
        Ok(if status == 202 {
            CallPlaced::NeedsAgent(info)
        } else {
            CallPlaced::Created(info)
        })
    }

    async fn agent_status(&self, agent_id: i64) -> Result<Option<StatusRef>, CcaiError> {
        self.read_agent_status(agent_id).await
    }

    /// One attempt (a 429 is waited out): at startup an unreachable upstream must not hold the
    /// gateway up, and the refresh tries again later.
    async fn call_controls(&self) -> Result<Vec<String>, CcaiError> {
        let (_, body) = self
            .send(
                Method::GET,
                "/ext/call-control/v1/capabilities",
                None,
                false,
            )
            .await?;
        Ok(Self::decode::<Capabilities>(&body)?.controls)
    }

    async fn call_control(
        &self,
        what: &str,
        call_id: &str,
        action: &str,
        body: &Value,
    ) -> Result<Value, CcaiError> {
        let what = if what == "chats" { "chats" } else { "calls" };
        let path = format!("/ext/call-control/v1/{what}/{call_id}/{action}");
        let (_, body) = self.send(Method::POST, &path, Some(body), false).await?;
        if body.is_empty() {
            return Ok(Value::Null);
        }
        Self::decode(&body)
    }
}

#[derive(Deserialize)]
struct Capabilities {
    #[serde(default)]
    controls: Vec<String>,
}

impl HttpCcai {
    /// The agent's status from a fresh read of the agents list; also refreshes the directory.
    async fn read_agent_status(&self, agent_id: i64) -> Result<Option<StatusRef>, CcaiError> {
        let agents: Vec<Agent> = self.list("/manager/api/v1/agents").await?;
        let status = agents
            .iter()
            .find(|a| a.id == agent_id)
            .and_then(|a| a.status.clone());
        *self.agents.lock().await = Some(Cached {
            at: Instant::now(),
            value: agents,
        });
        Ok(status)
    }
}

struct StatusJob {
    agent_id: i64,
    status: String,
    reply: oneshot::Sender<Result<StatusResult, CcaiError>>,
}

/// Sends status changes to the platform, coalescing them only when it must: a change goes out
/// at once while the tenant's budget has room ([`CcaiApi::has_room`]) and nothing is in flight;
/// changes that arrive while a call is in flight or the budget is spent wait together and go
/// out as one `agent_statuses` call per status name (at most [`StatusSetter::MAX_AGENTS`] agents
/// each). At a shift's start, thousands of changes become a few dozen calls, and the budget
/// (enforced by the client on every request) is never exceeded.
#[derive(Clone, Debug)]
pub struct StatusSetter {
    jobs: mpsc::Sender<StatusJob>,
}

impl StatusSetter {
    pub const MAX_AGENTS: usize = 100;

    /// Starts the sending task; it ends when every `StatusSetter` clone is dropped. While the
    /// budget has no room, it looks again every `poll`.
    pub fn spawn<C: CcaiApi + 'static>(client: Arc<C>, poll: Duration) -> Self {
        let (jobs, mut queue) = mpsc::channel::<StatusJob>(10_000);
        tokio::spawn(async move {
            while let Some(first) = queue.recv().await {
                let mut batch = vec![first];
                loop {
                    while let Ok(job) = queue.try_recv() {
                        batch.push(job);
                    }
                    if client.has_room() {
                        break;
                    }
                    tokio::time::sleep(poll).await;
                }
                let mut by_status: Vec<(String, Vec<StatusJob>)> = Vec::new();
                for job in batch {
                    match by_status
                        .iter_mut()
                        .find(|(s, jobs)| *s == job.status && jobs.len() < Self::MAX_AGENTS)
                    {
                        Some((_, jobs)) => jobs.push(job),
                        None => by_status.push((job.status.clone(), vec![job])),
                    }
                }
                for (status, jobs) in by_status {
                    let mut ids: Vec<i64> = jobs.iter().map(|j| j.agent_id).collect();
                    ids.dedup();
                    let outcome = client.set_status(&status, &ids).await;
                    for job in jobs {
                        let answer = match &outcome {
                            Ok(results) => results
                                .iter()
                                .find(|r| r.agent_id == job.agent_id)
                                .cloned()
                                .ok_or_else(|| {
                                    CcaiError::Decode(format!(
                                        "no result for agent {}",
                                        job.agent_id
                                    ))
                                }),
                            Err(error) => Err(error.clone()),
                        };
                        let _ = job.reply.send(answer);
                    }
                }
            }
        });
        StatusSetter { jobs }
    }

    /// Sets one agent's status; resolves with that agent's own result.
    pub async fn set(&self, agent_id: i64, status: &str) -> Result<StatusResult, CcaiError> {
        let (reply, answer) = oneshot::channel();
        let job = StatusJob {
            agent_id,
            status: status.to_owned(),
            reply,
        };
        self.jobs
            .send(job)
            .await
            .map_err(|_| CcaiError::Network("the status queue has stopped".into()))?;
        answer
            .await
            .map_err(|_| CcaiError::Network("the status queue has stopped".into()))?
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn replicas_sharing_a_postgresql_store_share_the_tenants_budget() {
        let dir = std::env::temp_dir().join(format!("adapter-ccai-budget-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let Some((store, _)) = crate::store::Store::replicas_for_tests(&dir).await else {
            return;
        };
        let per_second = 50;
        // Two replicas, each with the tenant's whole budget of its own: alone, each would send
        // 50 a second, 100 together.
        let replicas: Vec<Arc<RateBudget>> = (0..2)
            .map(|_| {
                let budget = RateBudget::new(per_second);
                budget.share(store.pool());
                Arc::new(budget)
            })
            .collect();
        let sent = Arc::new(std::sync::Mutex::new(Vec::new()));
        let started = Instant::now();
        let senders: Vec<_> = (0..8)
            .map(|i| {
                let budget = Arc::clone(&replicas[i % 2]);
                let sent = Arc::clone(&sent);
                tokio::spawn(async move {
                    while started.elapsed() < Duration::from_secs(3) {
                        budget.acquire().await;
                        sent.lock().unwrap().push(started.elapsed());
                    }
                })
            })
            .collect();
        for sender in senders {
            sender.await.unwrap();
        }
        let sent = sent.lock().unwrap().clone();
        // At most one window's share in each window the run touched (SHARED_WINDOW_MS): the
        // tenant's rate, not twice it.
        let elapsed_ms = sent.iter().max().copied().unwrap_or_default().as_millis() as usize;
        let windows = elapsed_ms / SHARED_WINDOW_MS as usize + 2;
        let allowed = windows * per_second.div_ceil(10) as usize;
        assert!(
            sent.len() <= allowed,
            "{} requests in {elapsed_ms} ms, {allowed} allowed",
            sent.len()
        );
        assert!(
            sent.len() >= 100,
            "the budget is used, not starved: {} in 3 s",
            sent.len()
        );
        store.close().await;
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// A tenant for the status sender: with `budget`, reached through the gateway's own budget
    /// and refusing what comes over the platform's limit (10 a second, as the simulator does);
    /// without, its budget has room when `room` says so. Records every `agent_statuses` call
    /// (each takes `takes` to answer).
    struct FakeTenant {
        room: std::sync::atomic::AtomicBool,
        budget: Option<(RateBudget, std::sync::Mutex<TokenBucket>, Instant)>,
        refused: std::sync::atomic::AtomicUsize,
        takes: Duration,
        calls: std::sync::Mutex<Vec<(String, Vec<i64>)>>,
    }

    impl FakeTenant {
        fn new(room: bool, takes: Duration) -> Arc<Self> {
            Arc::new(FakeTenant {
                room: room.into(),
                budget: None,
                refused: Default::default(),
                takes,
                calls: Default::default(),
            })
        }

        fn limited(per_second: u32) -> Arc<Self> {
            Arc::new(FakeTenant {
                room: false.into(),
                budget: Some((
                    RateBudget::new(per_second),
                    std::sync::Mutex::new(TokenBucket::new(per_second, per_second)),
                    Instant::now(),
                )),
                refused: Default::default(),
                takes: Duration::ZERO,
                calls: Default::default(),
            })
        }

        fn calls(&self) -> Vec<(String, Vec<i64>)> {
            self.calls.lock().unwrap().clone()
        }
    }

    impl CcaiApi for FakeTenant {
        fn has_room(&self) -> bool {
            match &self.budget {
                Some((budget, _, _)) => budget.has_room(),
                None => self.room.load(std::sync::atomic::Ordering::SeqCst),
            }
        }
        async fn set_status(
            &self,
            status: &str,
            agent_ids: &[i64],
        ) -> Result<Vec<StatusResult>, CcaiError> {
            if let Some((budget, limit, started)) = &self.budget {
                budget.acquire().await;
                let now_ms = started.elapsed().as_secs_f64() * 1000.0;
                if !limit.lock().unwrap().try_take(now_ms) {
                    self.refused
                        .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                    return Err(CcaiError::RateLimited { retry_after: None });
                }
            }
            self.calls
                .lock()
                .unwrap()
                .push((status.to_owned(), agent_ids.to_vec()));
            tokio::time::sleep(self.takes).await;
            Ok(agent_ids
                .iter()
                .map(|&agent_id| StatusResult {
                    agent_id,
                    previous_status: None,
                    current_status: None,
                    message: None,
                })
                .collect())
        }
        async fn user_statuses(&self) -> Result<Vec<UserStatus>, CcaiError> {
            Err(CcaiError::NotFound)
        }
        async fn agent_id(&self, _: &str) -> Result<Option<i64>, CcaiError> {
            Err(CcaiError::NotFound)
        }
        async fn place_call(&self, _: &PlaceCall) -> Result<CallPlaced, CcaiError> {
            Err(CcaiError::NotFound)
        }
        async fn agent_status(&self, _: i64) -> Result<Option<StatusRef>, CcaiError> {
            Err(CcaiError::NotFound)
        }
        async fn call_controls(&self) -> Result<Vec<String>, CcaiError> {
            Err(CcaiError::NotFound)
        }
        async fn call_control(
            &self,
            _: &str,
            _: &str,
            _: &str,
            _: &Value,
        ) -> Result<Value, CcaiError> {
            Err(CcaiError::NotFound)
        }
    }

    #[tokio::test]
    async fn two_thousand_agents_changing_status_together_stay_inside_the_tenants_limit() {
        let tenant = FakeTenant::limited(10);
        let setter = StatusSetter::spawn(Arc::clone(&tenant), Duration::from_millis(10));
        let mut waiting = Vec::new();
        for agent in 0..2_000 {
            let setter = setter.clone();
            let status = if agent % 2 == 0 { "Break" } else { "Meal" };
            waiting.push(tokio::spawn(async move { setter.set(agent, status).await }));
        }
        for (agent, waiting) in waiting.into_iter().enumerate() {
            let result = waiting.await.expect("task").expect("set");
            assert_eq!(result.agent_id, agent as i64);
        }
        assert_eq!(
            tenant.refused.load(std::sync::atomic::Ordering::SeqCst),
            0,
            "the tenant never had to refuse a request"
        );
        let calls: Vec<usize> = tenant.calls().iter().map(|(_, ids)| ids.len()).collect();
        assert_eq!(calls.iter().sum::<usize>(), 2_000);
        assert!(
            calls.len() <= 2 + 2_000 / StatusSetter::MAX_AGENTS,
            "coalesced into full calls: {calls:?}"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_status_change_goes_out_at_once_while_the_budget_has_room() {
        let tenant = FakeTenant::new(true, Duration::ZERO);
        let setter = StatusSetter::spawn(Arc::clone(&tenant), Duration::from_millis(10));
        let started = tokio::time::Instant::now();
        let result = setter.set(101, "Break").await.expect("set");
        assert_eq!(result.agent_id, 101);
        assert_eq!(
            started.elapsed(),
            Duration::ZERO,
            "no coalescing window while the budget has room"
        );
        assert_eq!(tenant.calls(), vec![("Break".to_owned(), vec![101])]);
    }

    #[tokio::test(start_paused = true)]
    async fn changes_wait_together_while_the_budget_has_no_room() {
        let tenant = FakeTenant::new(false, Duration::ZERO);
        let setter = StatusSetter::spawn(Arc::clone(&tenant), Duration::from_millis(10));
        let mut waiting = Vec::new();
        for (agent, status) in [
            (101, "Break"),
            (102, "Break"),
            (103, "Meal"),
            (104, "Break"),
        ] {
            let setter = setter.clone();
            waiting.push(tokio::spawn(async move { setter.set(agent, status).await }));
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
        assert!(tenant.calls().is_empty(), "nothing is sent without room");
        tenant.room.store(true, std::sync::atomic::Ordering::SeqCst);
        for (agent, waiting) in [101, 102, 103, 104].into_iter().zip(waiting) {
            let result = waiting.await.expect("task").expect("set");
            assert_eq!(result.agent_id, agent, "each gets its own result");
        }
        assert_eq!(
            tenant.calls(),
            vec![
                ("Break".to_owned(), vec![101, 102, 104]),
                ("Meal".to_owned(), vec![103])
            ],
            "one request per status"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn changes_that_arrive_during_a_request_go_out_together_after_it() {
        let tenant = FakeTenant::new(true, Duration::from_millis(100));
        let setter = StatusSetter::spawn(Arc::clone(&tenant), Duration::from_millis(10));
        let first = tokio::spawn({
            let setter = setter.clone();
            async move { setter.set(101, "Break").await }
        });
        tokio::time::sleep(Duration::from_millis(20)).await;
        let mut later = Vec::new();
        for agent in 102..=150 {
            let setter = setter.clone();
            later.push(tokio::spawn(async move { setter.set(agent, "Meal").await }));
        }
        first.await.expect("task").expect("set");
        for waiting in later {
            waiting.await.expect("task").expect("set");
        }
        let calls = tenant.calls();
        assert_eq!(calls.len(), 2, "{calls:?}");
        assert_eq!(calls[1].1, (102..=150).collect::<Vec<_>>());
    }

    #[test]
    fn system_statuses_are_not_offered() {
        let status = |id| UserStatus {
            id,
            name: String::new(),
            color: None,
        };
        for id in [-5, -6, -7, -8, -9, -11] {
            assert!(status(id).is_system(), "{id}");
        }
        for id in [0, -1, -2, -3, -4, -10, 1, 42] {
            assert!(!status(id).is_system(), "{id}");
        }
    }

    #[test]
    fn retry_rules() {
        let cases = [
            (CcaiError::RateLimited { retry_after: None }, false, true),
            (CcaiError::Upstream { status: 503 }, true, true),
            (CcaiError::Upstream { status: 503 }, false, false),
            (CcaiError::Timeout, false, false),
            (CcaiError::Network("refused".into()), true, true),
            (
                CcaiError::Rejected("Agent is not available to take this call".into()),
                true,
                false,
            ),
            (CcaiError::Unauthorized, true, false),
        ];
        for (error, idempotent, want) in cases {
            assert_eq!(
                error.retryable(idempotent),
                want,
                "{error:?} idempotent={idempotent}"
            );
        }
    }

    #[test]
    fn jitter_draws_are_units() {
        for _ in 0..1000 {
            let r = random_unit();
            assert!((0.0..1.0).contains(&r));
        }
    }
}
