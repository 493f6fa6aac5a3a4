//! The Kustomer REST v1 client: `Authorization: Bearer <API key>` (the key never leaves the
//! gateway and is never logged), the org's one request budget shared by every gateway replica
//! through the store ([`SharedBudget`]), `x-ratelimit-*` headers and 429s followed, both error
//! formats read, the two-step attachment upload, and look-ups before creates.
//!
//! Routing (for the status sync): [`HttpKustomer::routing_statuses`],
//! [`HttpKustomer::work_session`], [`HttpKustomer::set_work_session_status`].
//!
//! What rests on a guess: every call whose path or body was not found in Kustomer's
//! documentation or in public code says **Assumed** in its doc comment, and is listed with the
//! documented and seen ones in `docs/crm-sync.md` ("Kustomer endpoints and shapes"). The one body
//! that is a pure guess, the work session's status change, is [`work_session_status_body`].

use std::{
    collections::HashMap,
    hash::{BuildHasher, Hasher},
    sync::{Arc, Mutex},
    time::Duration,
};

use adapter_core::crm::{ConversationSummary, CustomerKey};
use reqwest::{header::HeaderMap, Method, StatusCode};
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};
use sqlx::AnyPool;

use crate::secret::Secret;

/// Why a Kustomer call failed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum KustomerError {
    #[error("Kustomer refused the API key (check --kustomer-api-key)")]
    Unauthorized,
    #[error("not found in Kustomer: {0}")]
    NotFound(String),
    /// 409: a unique value (email, phone, external id) is taken.
    #[error("Kustomer conflict: {0}")]
    Conflict(String),
    /// 400/422: Kustomer's own words, with the field when it names one.
    #[error("Kustomer refused the request: {0}")]
    Rejected(String),
    #[error("Kustomer is limiting the org's requests")]
    RateLimited,
    #[error("Kustomer failed (HTTP {0})")]
    Upstream(u16),
    #[error("Kustomer did not answer in time")]
    Timeout,
    #[error("cannot reach Kustomer: {0}")]
    Network(String),
    #[error("Kustomer's answer could not be read: {0}")]
    Decode(String),
    #[error("the file to attach could not be fetched: {0}")]
    File(String),
    /// The gateway's own store could not count the request against the org's budget (nothing
    /// was sent): not a fault of Kustomer's.
    #[error("the gateway's store could not count the request against the org's budget: {0}")]
    Store(String),
}

impl KustomerError {
    /// Whether trying the operation again later may succeed.
    pub fn retryable(&self) -> bool {
        matches!(
            self,
            KustomerError::RateLimited
                | KustomerError::Upstream(_)
                | KustomerError::Timeout
                | KustomerError::Network(_)
                | KustomerError::File(_)
                | KustomerError::Store(_)
        )
    }
}

/// The words of a Kustomer error body, in either format: `{errors: [{code, message, meta}]}`
/// or JSON:API `{errors: [{status, code, title, detail, source {pointer, parameter}}]}` (also
/// seen unwrapped, at the top level).
pub fn error_words(body: &[u8]) -> Option<String> {
    let value: Value = serde_json::from_slice(body).ok()?;
    let error = value
        .get("errors")
        .and_then(|e| e.as_array())
        .and_then(|e| e.first())
        .unwrap_or(&value);
    let text = |key: &str| error.get(key).and_then(Value::as_str).map(str::to_owned);
    let words = text("detail")
        .or_else(|| text("message"))
        .or_else(|| text("title"))
        .or_else(|| text("code"))?;
    let at = error
        .get("source")
        .and_then(|s| s.get("pointer").or_else(|| s.get("parameter")))
        .and_then(Value::as_str);
    Some(match at {
        Some(at) => format!("{words} (at {at})"),
        None => words,
    })
}

/// What the rate-limit headers say.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RateHeaders {
    pub limit: Option<u32>,
    pub remaining: Option<u32>,
    /// When the window resets, Unix ms.
    pub reset_at_ms: Option<i64>,
}

/// Reads `x-ratelimit-*` and `Retry-After`. `x-ratelimit-reset` is read as Unix seconds when it
/// is that large, else as seconds from now (both are seen in the wild).
pub fn rate_headers(headers: &HeaderMap, now_ms: i64) -> RateHeaders {
    let number = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<i64>().ok())
    };
    let reset = number("x-ratelimit-reset").map(|r| {
        if r > 1_000_000_000 {
            r * 1000
        } else {
            now_ms + r.max(0) * 1000
        }
    });
    let retry_after = number("retry-after").map(|s| now_ms + s.clamp(0, 3600) * 1000);
    RateHeaders {
        limit: number("x-ratelimit-limit").and_then(|v| u32::try_from(v).ok()),
        remaining: number("x-ratelimit-remaining").and_then(|v| u32::try_from(v).ok()),
        reset_at_ms: match (reset, retry_after) {
            (Some(a), Some(b)) => Some(a.max(b)),
            (a, b) => a.or(b),
        },
    }
}

pub fn now_ms() -> i64 {
    crate::clock::now_ms()
}

/// The org's request budget, kept in the store so that every gateway replica sharing it draws
/// from the same count: fixed windows aligned on the clock (as Kustomer's per-minute windows),
/// and a pause until the window resets when Kustomer says none are left or answers 429.
#[derive(Clone, Debug)]
pub struct SharedBudget {
    pool: AnyPool,
    per_window: u32,
    window_ms: i64,
}

impl SharedBudget {
    pub fn new(pool: AnyPool, per_window: u32, window_ms: i64) -> Self {
        SharedBudget {
            pool,
            per_window: per_window.max(1),
            window_ms: window_ms.max(100),
        }
    }

    /// Waits until one request may be sent; counts it.
    pub async fn acquire(&self) -> Result<(), KustomerError> {
        loop {
            let now = now_ms();
            let window = now - now.rem_euclid(self.window_ms);
            let taken = sqlx::query(
                "UPDATE kustomer_budget SET
                    used = CASE WHEN window_start_ms = $1 THEN used + 1 ELSE 1 END,
                    window_start_ms = $1
                 WHERE id = 1 AND blocked_until_ms <= $2
                   AND (window_start_ms <> $1 OR used < $3)",
            )
            .bind(window)
            .bind(now)
            .bind(i64::from(self.per_window))
            .execute(&self.pool)
            .await
            .map_err(|e| KustomerError::Store(e.to_string()))?;
            if taken.rows_affected() == 1 {
                return Ok(());
            }
            let blocked: (i64,) =
                sqlx::query_as("SELECT blocked_until_ms FROM kustomer_budget WHERE id = 1")
                    .fetch_one(&self.pool)
                    .await
                    .map_err(|e| KustomerError::Store(e.to_string()))?;
            // Paused by Kustomer: until its reset; else this window is spent: until the next.
            let until = if blocked.0 > now {
                blocked.0
            } else {
                window + self.window_ms
            };
            let wait = (until - now).clamp(10, 5_000);
            tokio::time::sleep(Duration::from_millis(wait as u64)).await;
        }
    }

    /// Follows what Kustomer said: none left (or a 429) pauses every replica until the reset.
    pub async fn observe(&self, headers: RateHeaders, refused: bool) {
        let now = now_ms();
        let exhausted = refused || headers.remaining == Some(0);
        if !exhausted {
            return;
        }
        let until = headers
            .reset_at_ms
            .unwrap_or(now + 1000)
            .clamp(now, now + 3_600_000);
        if let Err(error) = sqlx::query(
            "UPDATE kustomer_budget SET blocked_until_ms = CASE WHEN $1 > blocked_until_ms THEN $1 ELSE blocked_until_ms END WHERE id = 1",
        )
        .bind(until)
        .execute(&self.pool)
        .await
        {
            tracing::warn!(%error, "cannot record Kustomer's rate limit");
        }
    }
}

/// A customer found or created.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CustomerRef {
    pub id: String,
    pub created_at_ms: i64,
    /// The Kustomer users it is assigned to, as Kustomer's answer says.
    pub assigned_users: Vec<String>,
}

/// An uploaded attachment, as messages and notes reference it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AttachmentRef {
    #[serde(rename = "_id")]
    pub id: String,
    pub name: String,
    #[serde(rename = "contentType")]
    pub content_type: String,
    #[serde(rename = "contentLength")]
    pub content_length: u64,
}

/// An attachment created in Kustomer whose file goes to `url` (a presigned upload with
/// `fields`). Kept with the operation between the two steps, so that a retry uses it again
/// rather than create another.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PendingUpload {
    pub attachment: AttachmentRef,
    pub url: String,
    pub fields: Map<String, Value>,
}

/// A routing status (`statusType`: available, busy, unavailable, offline).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct RoutingStatus {
    pub id: String,
    pub name: String,
    pub status_type: String,
}

/// A user's work session: its current routing status.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct WorkSession {
    pub id: String,
    /// `relationships.user.data.id`.
    pub user: String,
    /// `relationships.status.data.id`.
    pub status: String,
    /// `attributes.statusType` (available, busy, unavailable, offline), when given.
    pub status_type: Option<String>,
    /// Not ended: `attributes.active`, or, where that is absent (as in the payloads seen),
    /// no `signedOutAt`.
    pub active: bool,
}

// Wire shapes: `{data: {type, id, attributes, relationships}}`.
#[derive(Deserialize)]
struct Envelope<T> {
    data: T,
}

#[derive(Deserialize)]
struct Resource<A> {
    id: String,
    #[serde(default = "Option::default")]
    attributes: Option<A>,
}

/// A JSON:API resource with its relationships (`{name: {data: {type, id}}}`).
#[derive(Deserialize)]
struct Related<A> {
    id: String,
    #[serde(default = "Option::default")]
    attributes: Option<A>,
    #[serde(default)]
    relationships: Map<String, Value>,
}

impl<A> Related<A> {
    /// The id of a to-one relationship: `relationships.{name}.data.id`.
    fn to_one(&self, name: &str) -> Option<String> {
        self.relationships
            .get(name)?
            .get("data")?
            .get("id")?
            .as_str()
            .map(str::to_owned)
    }
}

/// A list with its `links.next` (Kustomer's paging).
#[derive(Deserialize)]
struct Page<T> {
    data: Vec<T>,
    #[serde(default)]
    links: Option<PageLinks>,
}

#[derive(Deserialize, Default)]
struct PageLinks {
    #[serde(default)]
    next: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct CustomerAttributes {
    #[serde(default)]
    created_at: Option<String>,
    #[serde(default)]
    assigned_users: Vec<String>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct ConversationAttributes {
    #[serde(default)]
    status: Option<String>,
    #[serde(default)]
    created_at: Option<String>,
    #[serde(default)]
    external_id: Option<String>,
    #[serde(default)]
    custom: Map<String, Value>,
    #[serde(default)]
    assigned_users: Vec<String>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct ExternalAttributes {
    #[serde(default)]
    external_id: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct StatusAttributes {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    status_type: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct WorkSessionAttributes {
    #[serde(default)]
    status_type: Option<String>,
    #[serde(default)]
    active: Option<bool>,
    #[serde(default)]
    signed_out_at: Option<String>,
}

#[derive(Deserialize, Default)]
struct UserAttributes {
    #[serde(default)]
    email: Option<String>,
}

#[derive(Deserialize)]
struct Upload {
    url: String,
    #[serde(default)]
    fields: Map<String, Value>,
}

#[derive(Deserialize)]
struct UploadMeta {
    upload: Upload,
}

#[derive(Deserialize)]
struct AttachmentCreated {
    id: String,
    meta: UploadMeta,
}

/// Where the client goes and with what.
#[derive(Clone, Debug)]
pub struct KustomerSettings {
    pub base_url: String,
    pub api_key: Secret,
    /// The org's budget per window (its plan's requests per minute).
    pub per_window: u32,
    pub window_ms: i64,
    pub timeout: Duration,
}

/// The one HTTP implementation; tests point it at the simulator.
#[derive(Clone, Debug)]
pub struct HttpKustomer {
    http: reqwest::Client,
    base: String,
    key: Secret,
    budget: SharedBudget,
    users: Arc<Mutex<HashMap<String, String>>>,
    /// Requests sent (for the measurements in the docs).
    sent: Arc<std::sync::atomic::AtomicU64>,
    /// Kustomer refused a customer created with `assignedUsers` and took it without: customers
    /// are created unassigned from then on (see [`HttpKustomer::create_customer`]).
    create_refuses_assignment: Arc<std::sync::atomic::AtomicBool>,
}

/// Most 429s one request waits through before the operation is retried later.
const MAX_RATE_LIMITED: u32 = 30;
/// Largest file fetched for an attachment.
pub const MAX_FILE_BYTES: usize = 20 * 1024 * 1024;

fn encode_path(segment: &str) -> String {
    let mut out = String::with_capacity(segment.len());
    for b in segment.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' | b'@' => {
                out.push(char::from(b))
            }
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

fn random_boundary() -> String {
    let bits = std::collections::hash_map::RandomState::new()
        .build_hasher()
        .finish();
    format!("----ccai-adapter-{bits:016x}")
}

/// A `multipart/form-data` body: the presigned fields first, the file last.
fn multipart(
    fields: &Map<String, Value>,
    name: &str,
    content_type: &str,
    bytes: &[u8],
) -> (String, Vec<u8>) {
    let boundary = random_boundary();
    let mut body = Vec::with_capacity(bytes.len() + 512);
    for (key, value) in fields {
        let value = match value {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        body.extend_from_slice(
            format!(
                "--{boundary}\r\nContent-Disposition: form-data; name=\"{key}\"\r\n\r\n{value}\r\n"
            )
            .as_bytes(),
        );
    }
    let safe_name: String = name
        .chars()
        .filter(|c| *c != '"' && !c.is_control())
        .collect();
    body.extend_from_slice(
        format!(
            "--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{safe_name}\"\r\nContent-Type: {content_type}\r\n\r\n"
        )
        .as_bytes(),
    );
    body.extend_from_slice(bytes);
    body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    (format!("multipart/form-data; boundary={boundary}"), body)
}

impl HttpKustomer {
    pub fn new(settings: KustomerSettings, pool: AnyPool) -> Result<Self, KustomerError> {
        let http = reqwest::Client::builder()
            .timeout(settings.timeout)
            .build()
            .map_err(|e| KustomerError::Network(e.to_string()))?;
        Ok(HttpKustomer {
            http,
            base: settings.base_url.trim_end_matches('/').to_owned(),
            key: settings.api_key,
            budget: SharedBudget::new(pool, settings.per_window, settings.window_ms),
            users: Arc::default(),
            sent: Arc::default(),
            create_refuses_assignment: Arc::default(),
        })
    }

    /// Requests sent to Kustomer since start.
    pub fn requests_sent(&self) -> u64 {
        self.sent.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// One API call within the org's budget; a 429 waits for the reset and tries again (a
    /// refused request was not carried out). Answers the body (`Value::Null` when empty).
    async fn send(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
    ) -> Result<Value, KustomerError> {
        let url = format!("{}{path}", self.base);
        let mut refused = 0;
        loop {
            self.budget.acquire().await?;
            let mut request = self
                .http
                .request(method.clone(), &url)
                .bearer_auth(self.key.expose())
                .header("accept", "application/json");
            if let Some(body) = body {
                request = request.json(body);
            }
            self.sent.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let response = match request.send().await {
                Ok(r) => r,
                Err(e) => {
                    crate::telemetry::upstream_request("kustomer", None, e.is_timeout());
                    return Err(if e.is_timeout() {
                        KustomerError::Timeout
                    } else {
                        KustomerError::Network(e.without_url().to_string())
                    });
                }
            };
            let status = response.status();
            crate::telemetry::upstream_request("kustomer", Some(status.as_u16()), false);
            let headers = rate_headers(response.headers(), now_ms());
            let limited = status == StatusCode::TOO_MANY_REQUESTS;
            self.budget.observe(headers, limited).await;
            let bytes = match response.bytes().await {
                Ok(b) => b,
                Err(e) if e.is_timeout() => return Err(KustomerError::Timeout),
                Err(e) => return Err(KustomerError::Network(e.without_url().to_string())),
            };
            if limited {
                refused += 1;
                tracing::debug!(
                    path,
                    refused,
                    "Kustomer answered 429; waiting for the reset"
                );
                if refused >= MAX_RATE_LIMITED {
                    return Err(KustomerError::RateLimited);
                }
                continue;
            }
            let words =
                || error_words(&bytes).unwrap_or_else(|| format!("HTTP {}", status.as_u16()));
            return match status {
                s if s.is_success() => {
                    if bytes.is_empty() {
                        Ok(Value::Null)
                    } else {
                        serde_json::from_slice(&bytes)
                            .map_err(|e| KustomerError::Decode(e.to_string()))
                    }
                }
                StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => {
                    Err(KustomerError::Unauthorized)
                }
                StatusCode::NOT_FOUND => Err(KustomerError::NotFound(words())),
                StatusCode::CONFLICT => Err(KustomerError::Conflict(words())),
                s if s.is_client_error() => Err(KustomerError::Rejected(words())),
                s => Err(KustomerError::Upstream(s.as_u16())),
            };
        }
    }

    fn data<T: serde::de::DeserializeOwned>(value: Value) -> Result<T, KustomerError> {
        serde_json::from_value::<Envelope<T>>(value)
            .map(|e| e.data)
            .map_err(|e| KustomerError::Decode(e.to_string()))
    }

    fn customer_ref(resource: Resource<CustomerAttributes>) -> CustomerRef {
        let attributes = resource.attributes.unwrap_or_default();
        let created_at_ms = attributes
            .created_at
            .as_deref()
            .and_then(adapter_core::iso_time::parse_utc_ms)
            .unwrap_or_default();
        CustomerRef {
            id: resource.id,
            created_at_ms,
            assigned_users: attributes.assigned_users,
        }
    }

    /// `GET /v1/customers/{phone|email|externalId}=…` (phone documented, email and external id
    /// seen in public code); `None` when there is none (404).
    pub async fn find_customer(
        &self,
        key: &CustomerKey,
    ) -> Result<Option<CustomerRef>, KustomerError> {
        let path = match key {
            CustomerKey::Phone(p) => format!("/v1/customers/phone={}", encode_path(p)),
            CustomerKey::Email(e) => format!("/v1/customers/email={}", encode_path(e)),
            CustomerKey::ExternalId(x) => format!("/v1/customers/externalId={}", encode_path(x)),
        };
        match self.send(Method::GET, &path, None).await {
            Ok(value) => Ok(Some(Self::customer_ref(Self::data(value)?))),
            Err(KustomerError::NotFound(_)) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// `POST /v1/customers`, assigned to Kustomer user `assign_to` in the same request when
    /// given. **Assumed**: `assignedUsers` is not documented for customers (neither here nor
    /// on `PUT`). The answer says whether it was taken ([`CustomerRef::assigned_users`]): when
    /// it does not show the assignment, the caller assigns with [`HttpKustomer::update_customer`].
    /// A create refused with the assignment (400) is sent again without it, and customers are
    /// created unassigned from then on by this process.
    pub async fn create_customer(
        &self,
        body: &Value,
        assign_to: Option<&str>,
    ) -> Result<CustomerRef, KustomerError> {
        use std::sync::atomic::Ordering;
        let refuses = self.create_refuses_assignment.load(Ordering::Relaxed);
        if let (Some(user), false) = (assign_to, refuses) {
            let mut assigned = body.clone();
            assigned["assignedUsers"] = Value::from(vec![user]);
            match self
                .send(Method::POST, "/v1/customers", Some(&assigned))
                .await
            {
                Ok(value) => return Ok(Self::customer_ref(Self::data(value)?)),
                Err(KustomerError::Rejected(reason)) => {
                    let value = self.send(Method::POST, "/v1/customers", Some(body)).await?;
                    tracing::warn!(
                        %reason,
                        "Kustomer refused a customer created with its assignment and took it without: customers are assigned in a request of their own from now on"
                    );
                    self.create_refuses_assignment
                        .store(true, Ordering::Relaxed);
                    return Ok(Self::customer_ref(Self::data(value)?));
                }
                Err(e) => return Err(e),
            }
        }
        let value = self.send(Method::POST, "/v1/customers", Some(body)).await?;
        Ok(Self::customer_ref(Self::data(value)?))
    }

    /// `PUT /v1/customers/{id}`. **Assumed**: not found in the documentation or public code
    /// (the customer's fields are the documented ones of `POST /v1/customers`).
    pub async fn update_customer(&self, id: &str, body: &Value) -> Result<(), KustomerError> {
        self.send(
            Method::PUT,
            &format!("/v1/customers/{}", encode_path(id)),
            Some(body),
        )
        .await
        .map(drop)
    }

    fn summary(resource: Resource<ConversationAttributes>) -> ConversationSummary {
        let a = resource.attributes.unwrap_or_default();
        let text = |key: &str| a.custom.get(key).and_then(Value::as_str).map(str::to_owned);
        ConversationSummary {
            id: resource.id,
            status: a.status.clone().unwrap_or_default(),
            created_at_ms: a
                .created_at
                .as_deref()
                .and_then(adapter_core::iso_time::parse_utc_ms)
                .unwrap_or_default(),
            external_id: a.external_id.clone(),
            menu: text("ccaiMenuSelectionStr"),
            channel: text("ccaiChannelStr"),
            assigned_users: a.assigned_users.clone(),
        }
    }

    /// `GET /v1/customers/{id}/conversations`, newest first. **Assumed**: neither the path nor
    /// its order was found in the documentation or public code.
    pub async fn customer_conversations(
        &self,
        customer: &str,
    ) -> Result<Vec<ConversationSummary>, KustomerError> {
        let value = self
            .send(
                Method::GET,
                &format!("/v1/customers/{}/conversations", encode_path(customer)),
                None,
            )
            .await?;
        let list: Vec<Resource<ConversationAttributes>> = Self::data(value)?;
        Ok(list.into_iter().map(Self::summary).collect())
    }

    /// `GET /v1/conversations/{id}`. **Assumed**: the JSON:API read of one conversation; only
    /// the list (`GET /v1/conversations`) was found documented.
    pub async fn conversation(&self, id: &str) -> Result<ConversationSummary, KustomerError> {
        let value = self
            .send(
                Method::GET,
                &format!("/v1/conversations/{}", encode_path(id)),
                None,
            )
            .await?;
        Ok(Self::summary(Self::data(value)?))
    }

    /// `POST /v1/conversations`; answers the id.
    pub async fn create_conversation(&self, body: &Value) -> Result<String, KustomerError> {
        let value = self
            .send(Method::POST, "/v1/conversations", Some(body))
            .await?;
        let resource: Resource<Value> = Self::data(value)?;
        Ok(resource.id)
    }

    /// `PUT /v1/conversations/{id}` with `status`, `assignedUsers` or `custom`. **Assumed**:
    /// public code updates conversations with `PATCH` (`application/json-patch+json`); `PUT`
    /// was not found.
    pub async fn update_conversation(&self, id: &str, body: &Value) -> Result<(), KustomerError> {
        self.send(
            Method::PUT,
            &format!("/v1/conversations/{}", encode_path(id)),
            Some(body),
        )
        .await
        .map(drop)
    }

    /// `POST /v1/conversations/{id}/messages`; answers the id.
    pub async fn create_message(
        &self,
        conversation: &str,
        body: &Value,
    ) -> Result<String, KustomerError> {
        self.create_in(conversation, "messages", body).await
    }

    /// `POST /v1/conversations/{id}/{what}`; answers the created resource's id.
    async fn create_in(
        &self,
        conversation: &str,
        what: &str,
        body: &Value,
    ) -> Result<String, KustomerError> {
        let value = self
            .send(
                Method::POST,
                &format!("/v1/conversations/{}/{what}", encode_path(conversation)),
                Some(body),
            )
            .await?;
        let resource: Resource<Value> = Self::data(value)?;
        Ok(resource.id)
    }

    /// The ids and external ids of `GET /v1/conversations/{id}/{messages|notes}`. **Assumed**:
    /// neither list, nor an `externalId` on messages and notes, was found documented or in
    /// public code; the exactly-once checks after a crash rest on it.
    async fn listed(
        &self,
        conversation: &str,
        what: &str,
    ) -> Result<Vec<(String, Option<String>)>, KustomerError> {
        let value = self
            .send(
                Method::GET,
                &format!("/v1/conversations/{}/{what}", encode_path(conversation)),
                None,
            )
            .await?;
        let list: Vec<Resource<ExternalAttributes>> = Self::data(value)?;
        Ok(list
            .into_iter()
            .map(|r| (r.id, r.attributes.and_then(|a| a.external_id)))
            .collect())
    }

    /// The message of `conversation` with `external_id`, if any.
    pub async fn find_message(
        &self,
        conversation: &str,
        external_id: &str,
    ) -> Result<Option<String>, KustomerError> {
        Ok(self
            .listed(conversation, "messages")
            .await?
            .into_iter()
            .find(|(_, x)| x.as_deref() == Some(external_id))
            .map(|(id, _)| id))
    }

    /// The note of `conversation` with `external_id`, if any.
    pub async fn find_note(
        &self,
        conversation: &str,
        external_id: &str,
    ) -> Result<Option<String>, KustomerError> {
        Ok(self
            .listed(conversation, "notes")
            .await?
            .into_iter()
            .find(|(_, x)| x.as_deref() == Some(external_id))
            .map(|(id, _)| id))
    }

    /// `PUT /v1/messages/{id}` with `custom`. **Assumed**: not found in the documentation or
    /// public code.
    pub async fn update_message(&self, id: &str, body: &Value) -> Result<(), KustomerError> {
        self.send(
            Method::PUT,
            &format!("/v1/messages/{}", encode_path(id)),
            Some(body),
        )
        .await
        .map(drop)
    }

    /// `POST /v1/conversations/{id}/notes` with `{"body": …}` (seen in public code, `body`
    /// its only required field); answers the id. The `externalId` and `attachments` the
    /// executor adds are **assumed**: not shown on notes anywhere.
    pub async fn create_note(
        &self,
        conversation: &str,
        body: &Value,
    ) -> Result<String, KustomerError> {
        self.create_in(conversation, "notes", body).await
    }

    /// The two-step upload: `POST /v1/attachments`, then the file to the presigned URL
    /// (multipart, fields first, `file` last). Answers what a message or note references.
    pub async fn upload_attachment(
        &self,
        name: &str,
        content_type: &str,
        bytes: &[u8],
    ) -> Result<AttachmentRef, KustomerError> {
        let pending = self
            .create_attachment(name, content_type, bytes.len() as u64)
            .await?;
        self.upload(&pending, bytes).await?;
        Ok(pending.attachment)
    }

    /// The first step: `POST /v1/attachments`; answers the attachment and where its file goes.
    pub async fn create_attachment(
        &self,
        name: &str,
        content_type: &str,
        length: u64,
    ) -> Result<PendingUpload, KustomerError> {
        let value = self
            .send(
                Method::POST,
                "/v1/attachments",
                Some(&json!({"name": name, "contentType": content_type, "contentLength": length})),
            )
            .await?;
        let created: AttachmentCreated = Self::data(value)?;
        if !(created.meta.upload.url.starts_with("https://")
            || created.meta.upload.url.starts_with("http://"))
        {
            return Err(KustomerError::Decode(
                "the upload URL is not http(s)".into(),
            ));
        }
        Ok(PendingUpload {
            attachment: AttachmentRef {
                id: created.id,
                name: name.into(),
                content_type: content_type.into(),
                content_length: length,
            },
            url: created.meta.upload.url,
            fields: created.meta.upload.fields,
        })
    }

    /// The second step: the file, as multipart, to the presigned URL (not the API budget).
    /// Uploading the same file again to the same URL is harmless.
    pub async fn upload(&self, pending: &PendingUpload, bytes: &[u8]) -> Result<(), KustomerError> {
        let a = &pending.attachment;
        if bytes.len() as u64 != a.content_length {
            return Err(KustomerError::Rejected(format!(
                "the file is {} bytes now, {} when its attachment was created",
                bytes.len(),
                a.content_length
            )));
        }
        let (form_type, body) = multipart(&pending.fields, &a.name, &a.content_type, bytes);
        let response = self
            .http
            .post(&pending.url)
            .header("content-type", form_type)
            .body(body)
            .send()
            .await
            .map_err(|e| {
                if e.is_timeout() {
                    KustomerError::Timeout
                } else {
                    KustomerError::Network(e.without_url().to_string())
                }
            })?;
        let status = response.status();
        if !status.is_success() {
            return Err(if status.is_server_error() {
                KustomerError::Upstream(status.as_u16())
            } else {
                KustomerError::Rejected(format!(
                    "the upload was refused (HTTP {})",
                    status.as_u16()
                ))
            });
        }
        Ok(())
    }

    /// The Kustomer user with this email (`GET /v1/users?email=`, seen in public code),
    /// remembered for the life of the process. Only a user whose own `email` is this one counts
    /// (the filter's exactness is not documented). This is where the gateway learns who an agent
    /// is in Kustomer: never from the browser.
    pub async fn user_id(&self, email: &str) -> Result<Option<String>, KustomerError> {
        let email = email.trim().to_lowercase();
        if let Some(id) = self
            .users
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&email)
        {
            return Ok(Some(id.clone()));
        }
        let value = self
            .send(
                Method::GET,
                &format!("/v1/users?email={}", encode_path(&email)),
                None,
            )
            .await?;
        let list: Vec<Resource<UserAttributes>> = Self::data(value)?;
        let id = list
            .into_iter()
            .find(|r| {
                r.attributes
                    .as_ref()
                    .and_then(|a| a.email.as_deref())
                    .is_some_and(|e| e.trim().eq_ignore_ascii_case(&email))
            })
            .map(|r| r.id);
        if let Some(id) = &id {
            self.users
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .insert(email, id.clone());
        }
        Ok(id)
    }

    /// `PUT /v1/metadata/{klass}` (documented) with `{properties: {name: {displayName}}}` (the
    /// body seen in public code).
    pub async fn define_attributes(
        &self,
        klass: &str,
        properties: &[(&str, &str)],
    ) -> Result<(), KustomerError> {
        let properties: Map<String, Value> = properties
            .iter()
            .map(|(name, label)| ((*name).to_owned(), json!({ "displayName": label })))
            .collect();
        self.send(
            Method::PUT,
            &format!("/v1/metadata/{}", encode_path(klass)),
            Some(&json!({ "properties": properties })),
        )
        .await
        .map(drop)
    }

    /// `GET /v1/routing/statuses` (documented): JSON:API resources of type `status`; unknown
    /// keys are ignored, and a status without a name or a `statusType` is left out.
    pub async fn routing_statuses(&self) -> Result<Vec<RoutingStatus>, KustomerError> {
        let value = self.send(Method::GET, "/v1/routing/statuses", None).await?;
        let list: Vec<Resource<StatusAttributes>> = Self::data(value)?;
        Ok(list
            .into_iter()
            .filter_map(|r| {
                let a = r.attributes?;
                Some(RoutingStatus {
                    id: r.id,
                    name: a.name?,
                    status_type: a.status_type?,
                })
            })
            .collect())
    }

    /// The user's active work session, read from `GET /v1/routing/users/{id}/work-sessions`
    /// (documented, paginated; `links.next` followed, up to [`MAX_WORK_SESSION_PAGES`] pages of
    /// 100). Not `GET /v1/routing/work-sessions?user=…`: there `user=true|false` means the
    /// calling user (the API key's), not another one.
    pub async fn work_session(&self, user_id: &str) -> Result<Option<WorkSession>, KustomerError> {
        let mut path = format!(
            "/v1/routing/users/{}/work-sessions?pageSize=100",
            encode_path(user_id)
        );
        for _ in 0..MAX_WORK_SESSION_PAGES {
            let value = self.send(Method::GET, &path, None).await?;
            let page: Page<Related<WorkSessionAttributes>> =
                serde_json::from_value(value).map_err(|e| KustomerError::Decode(e.to_string()))?;
            if let Some(active) = page
                .data
                .into_iter()
                .filter_map(work_session_of)
                .find(|w| w.active)
            {
                return Ok(Some(active));
            }
            match page.links.and_then(|l| l.next) {
                Some(next) => {
                    path = same_origin_path(&next).ok_or_else(|| {
                        KustomerError::Decode(format!(
                            "links.next is not a path of the API: {next}"
                        ))
                    })?
                }
                None => break,
            }
        }
        Ok(None)
    }

    /// `PUT /v1/routing/work-sessions/{id}` (the path is documented) with
    /// [`work_session_status_body`] (**assumed**). Nothing is read from the answer, whose shape
    /// is not documented either.
    pub async fn set_work_session_status(
        &self,
        session_id: &str,
        status_id: &str,
    ) -> Result<(), KustomerError> {
        self.send(
            Method::PUT,
            &format!("/v1/routing/work-sessions/{}", encode_path(session_id)),
            Some(&work_session_status_body(status_id)),
        )
        .await
        .map(drop)
    }
}

/// Pages of a user's work sessions read before giving up on finding the active one.
pub const MAX_WORK_SESSION_PAGES: usize = 10;

/// The body of `PUT /v1/routing/work-sessions/{id}` that sets the routing status.
///
/// **Assumed.** Kustomer documents the endpoint (roles `work_session.update`, `routing.update`)
/// but not its request body, and no public code calls it. The guess, `{"status": "<status id>"}`,
/// mirrors the `status` relationship of the work session Kustomer sends. The simulator accepts
/// exactly this and says it is the same assumption (`set_work_session` there). Change it here,
/// and only here, when the real body is known.
pub fn work_session_status_body(status_id: &str) -> Value {
    json!({ "status": status_id })
}

/// A work session as Kustomer shows it: `{type: "work_session", id, attributes {statusType,
/// active, signedOutAt, …}, relationships {user: {data: {type: "user", id}}, status: {data:
/// {type: "status", id}}, …}}` (seen in Kustomer's event payloads).
fn work_session_of(resource: Related<WorkSessionAttributes>) -> Option<WorkSession> {
    let user = resource.to_one("user")?;
    let status = resource.to_one("status")?;
    let a = resource.attributes.unwrap_or_default();
    Some(WorkSession {
        id: resource.id,
        user,
        status,
        status_type: a.status_type,
        active: a.active.unwrap_or(a.signed_out_at.is_none()),
    })
}

/// The path (and query) of a `links.next`: relative as Kustomer gives it, or an absolute URL,
/// whose origin is dropped (the request goes to the configured API only).
fn same_origin_path(link: &str) -> Option<String> {
    if link.starts_with('/') {
        return Some(link.to_owned());
    }
    let rest = link
        .strip_prefix("https://")
        .or_else(|| link.strip_prefix("http://"))?;
    rest.find('/').map(|at| rest[at..].to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::HeaderValue;

    #[test]
    fn both_error_formats_are_read() {
        let rows = [
            (
                r#"{"errors":[{"code":"duplicate","message":"phone taken","meta":{}}]}"#,
                Some("phone taken"),
            ),
            (
                r#"{"errors":[{"status":"400","code":"invalid","title":"Bad Request","detail":"fooStr is not defined","source":{"pointer":"/data/attributes/custom/fooStr"}}]}"#,
                Some("fooStr is not defined (at /data/attributes/custom/fooStr)"),
            ),
            (
                r#"{"status":"404","code":"not_found","title":"Not Found"}"#,
                Some("Not Found"),
            ),
            (
                r#"{"errors":[{"code":"rate_limited"}]}"#,
                Some("rate_limited"),
            ),
            ("not json", None),
            ("{}", None),
        ];
        for (body, want) in rows {
            assert_eq!(error_words(body.as_bytes()).as_deref(), want, "{body}");
        }
    }

    #[test]
    fn rate_headers_read_both_reset_styles() {
        let headers = |pairs: &[(&'static str, &str)]| {
            let mut map = HeaderMap::new();
            for (k, v) in pairs {
                if let Ok(v) = HeaderValue::from_str(v) {
                    map.insert(*k, v);
                }
            }
            map
        };
        let now = 1_795_276_800_000;
        let epoch = rate_headers(
            &headers(&[
                ("x-ratelimit-limit", "1000"),
                ("x-ratelimit-remaining", "0"),
                ("x-ratelimit-reset", "1795276860"),
            ]),
            now,
        );
        assert_eq!(
            epoch,
            RateHeaders {
                limit: Some(1000),
                remaining: Some(0),
                reset_at_ms: Some(1_795_276_860_000)
            }
        );
        let relative = rate_headers(&headers(&[("x-ratelimit-reset", "30")]), now);
        assert_eq!(relative.reset_at_ms, Some(now + 30_000));
        let retry = rate_headers(
            &headers(&[("x-ratelimit-reset", "5"), ("retry-after", "20")]),
            now,
        );
        assert_eq!(
            retry.reset_at_ms,
            Some(now + 20_000),
            "the later of the two"
        );
        assert_eq!(
            rate_headers(&HeaderMap::new(), now),
            RateHeaders {
                limit: None,
                remaining: None,
                reset_at_ms: None
            }
        );
    }

    #[test]
    fn multipart_puts_the_fields_first_and_the_file_last() {
        let mut fields = Map::new();
        fields.insert("policy".into(), json!("p-1"));
        fields.insert("key".into(), json!("attachments/1/a.txt"));
        let (content_type, body) = multipart(&fields, "a\".txt", "text/plain", b"hello");
        let text = String::from_utf8_lossy(&body);
        let boundary = content_type.split("boundary=").nth(1).unwrap_or_default();
        assert!(text.starts_with(&format!("--{boundary}\r\n")));
        let file_at = text.find("name=\"file\"").unwrap_or(0);
        assert!(text.find("name=\"policy\"").is_some_and(|p| p < file_at));
        assert!(
            text.contains("filename=\"a.txt\""),
            "quotes cannot break the header: {text}"
        );
        assert!(text.ends_with(&format!("hello\r\n--{boundary}--\r\n")));
    }

    #[test]
    fn path_segments_are_encoded() {
        assert_eq!(encode_path("+1 415/555"), "%2B1%20415%2F555");
        assert_eq!(encode_path("ada@example.com"), "ada@example.com");
    }

    /// A `kustomer.work-session.update` payload's `data` as seen in public code (2021, no
    /// `active` attribute), trimmed.
    const SEEN_WORK_SESSION: &str = r#"{"type":"work_session","id":"6093f0c1a0b2c3d4e5f60718",
        "attributes":{"routable":false,"statusType":"unavailable","workItemCount":0,
            "signedInAt":"2021-05-06T13:00:00.000Z","signedOutAt":null,"capacityRemaining":{},
            "totalTimeByStatus":{"5f0e":{"statusAt":"2021-05-06T13:00:00.000Z","time":0}},
            "updatedAt":"2021-05-06T13:05:00.000Z","rev":3},
        "relationships":{"org":{"data":{"type":"org","id":"5f00"}},
            "user":{"data":{"type":"user","id":"5f01"}},"team":{"data":{"type":"team","id":"5f02"}},
            "status":{"data":{"type":"status","id":"5f0e"}},
            "queues":{"data":[{"type":"queue","id":"5f03"}]}},
        "links":{"self":"/v1/routing/work-sessions/6093f0c1a0b2c3d4e5f60718"}}"#;

    fn decoded(text: &str) -> Option<WorkSession> {
        work_session_of(serde_json::from_str(text).unwrap())
    }

    #[test]
    fn work_sessions_are_read_from_their_relationships() {
        assert_eq!(
            decoded(SEEN_WORK_SESSION),
            Some(WorkSession {
                id: "6093f0c1a0b2c3d4e5f60718".into(),
                user: "5f01".into(),
                status: "5f0e".into(),
                status_type: Some("unavailable".into()),
                active: true,
            })
        );
        let ended = SEEN_WORK_SESSION.replace(
            r#""signedOutAt":null"#,
            r#""signedOutAt":"2021-05-06T21:00:00.000Z""#,
        );
        assert_eq!(decoded(&ended).map(|w| w.active), Some(false));
        let said = SEEN_WORK_SESSION.replace(r#""routable":false"#, r#""active":false"#);
        assert_eq!(
            decoded(&said).map(|w| w.active),
            Some(false),
            "active, when given, wins"
        );
        // The shape the gateway used to guess (user and status as attributes) is not one.
        let guessed = r#"{"type":"work-session","id":"ws-1",
            "attributes":{"user":"kus-user-1","status":"rs-available","active":true}}"#;
        assert_eq!(decoded(guessed), None);
    }

    #[test]
    fn routing_statuses_tolerate_unknown_keys() {
        let body = json!({"data": [
            {"type": "status", "id": "s1", "attributes": {"_id": "s1", "name": "available",
                "statusType": "available", "selectable": true, "system": true, "enabled": true,
                "org": "o1", "createdAt": "2021-01-01T00:00:00.000Z"},
             "links": {"self": "/v1/routing/statuses/s1"}},
            {"type": "status", "id": "s2", "attributes": {"statusType": "busy"}},
        ]});
        let list: Vec<Resource<StatusAttributes>> = HttpKustomer::data(body).unwrap();
        let names: Vec<_> = list
            .into_iter()
            .map(|r| r.attributes.and_then(|a| a.name))
            .collect();
        assert_eq!(names, [Some("available".to_owned()), None]);
    }

    #[test]
    fn the_assumed_status_change_body_is_one_function() {
        assert_eq!(
            work_session_status_body("rs-lunch"),
            json!({"status": "rs-lunch"})
        );
    }

    #[test]
    fn next_links_stay_on_the_configured_api() {
        let rows = [
            (
                "/v1/routing/users/u/work-sessions?page=2",
                Some("/v1/routing/users/u/work-sessions?page=2"),
            ),
            (
                "https://org.api.kustomerapp.com/v1/x?page=2",
                Some("/v1/x?page=2"),
            ),
            ("https://elsewhere.example", None),
            ("javascript:alert(1)", None),
        ];
        for (link, want) in rows {
            assert_eq!(same_origin_path(link).as_deref(), want, "{link}");
        }
    }

    #[test]
    fn what_is_worth_retrying() {
        assert!(KustomerError::RateLimited.retryable());
        assert!(KustomerError::Upstream(502).retryable());
        assert!(!KustomerError::Rejected("fooStr is not defined".into()).retryable());
        assert!(!KustomerError::Unauthorized.retryable());
    }
}
