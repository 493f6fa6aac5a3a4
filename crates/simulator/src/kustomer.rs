//! The Kustomer side of the simulator: the REST v1 subset the gateway writes to, with
//! Kustomer's documented shapes (JSON:API-ish `{data: {type, id, attributes, relationships}}`),
//! rules and limits:
//!
//! - `Authorization: Bearer <api key>`; anything else is a 401.
//! - One request budget for the whole org per window (1,000 per minute by default), every
//!   answer carrying `x-ratelimit-limit`, `x-ratelimit-remaining` and `x-ratelimit-reset`
//!   (Unix seconds when the window resets); over it, 429 with `Retry-After`.
//! - Errors in both of Kustomer's formats: JSON:API `{errors: [{status, code, title, detail,
//!   source}]}` for validation and lookups, `{errors: [{code, message, meta}]}` for conflicts and
//!   limits.
//! - Customers' emails, phones and external ids are unique in the org (409 on a duplicate).
//! - Custom attributes must exist on their klass and their name's suffix sets their type
//!   (`Str` ≤ 1,024 characters, `Txt`, `Num`, `At`, `Bool`, `Url`); a wrong value is a 400.
//! - Attachments in two steps: `POST /v1/attachments` answers an id and a presigned upload
//!   (`meta.upload {url, fields}`); the file is POSTed there as multipart, fields first and
//!   `file` last (204); messages and notes then reference `{_id, name, contentType,
//!   contentLength}` of uploaded attachments only.
//! - Routing: statuses, and work sessions, for the status sync: JSON:API resources as Kustomer
//!   sends them (`type: "work_session"`, the user and the status as relationships). A work
//!   session ends when a status of type `offline` is set (`signedOutAt`, read-only after); the
//!   user's next status change in the desktop starts a new one. The body that changes a status
//!   through the API is not documented: this side accepts the gateway's guess,
//!   `{"status": "<status id>"}`, and only that ([`set_work_session`]).
//!
//! Tests read everything back: `GET /_sim/kustomer/writes` (every write, in order, with its
//! body) and `GET /_sim/state` (`kustomer` key). `POST /_sim/kustomer/faults` answers the next
//! requests with 429 or 500, `POST /_sim/kustomer/limits` changes the budget, and
//! `POST /_sim/kustomer/api-key` rotates the key the org accepts (the old one then gets 401).

// Checks return the finished error response, which the handler answers as it is.
#![allow(clippy::result_large_err)]

use std::{
    collections::BTreeMap,
    sync::{Arc, Mutex, MutexGuard},
};

use adapter_core::crm::{attribute_type, AttributeType, STANDARD_FIELDS};
use axum::{
    body::Bytes,
    extract::{Path, Query, Request, State},
    http::{header, HeaderMap, HeaderValue, Method, StatusCode},
    middleware::Next,
    response::{IntoResponse, Response},
    routing::{get, post, put},
    Json, Router,
};
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};

use crate::sessions::now_ms;

/// The API key the simulated org accepts unless configured otherwise.
pub const DEV_API_KEY: &str = "sim-kustomer-key";
/// Requests per window for the whole org (Kustomer's smallest plan: 1,000 per minute).
pub const DEFAULT_PER_WINDOW: u32 = 1_000;
pub const DEFAULT_WINDOW_MS: i64 = 60_000;
/// Largest body a write may carry (a transcript note stays far below).
pub const MAX_NOTE_CHARS: usize = 10_240;
/// Largest attachment accepted.
pub const MAX_ATTACHMENT_BYTES: usize = 20 * 1024 * 1024;

/// The users of the simulated org: the CCAI agents' emails (sign-in matches on email).
/// Each starts with an active work session, `ws-{id}`, Available.
pub const USERS: [(&str, &str, &str); 3] = [
    ("kus-user-1", "ada.lovelace@example.com", "Ada Lovelace"),
    ("kus-user-2", "grace.hopper@example.com", "Grace Hopper"),
    ("kus-user-3", "alan.turing@example.com", "Alan Turing"),
];

/// The user the API key belongs to (an integration user, no work session): what
/// `GET /v1/routing/work-sessions?user=true` means by "the calling user".
pub const API_KEY_USER: &str = "kus-api-integration";

/// Routing statuses: `(id, name, statusType)`.
pub const ROUTING_STATUSES: [(&str, &str, &str); 6] = [
    ("rs-available", "Available", "available"),
    ("rs-busy", "Busy", "busy"),
    ("rs-lunch", "Lunch", "unavailable"),
    ("rs-email", "Email only", "unavailable"),
    ("rs-meeting", "In a meeting", "unavailable"),
    ("rs-offline", "Offline", "offline"),
];

#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Customer {
    pub id: String,
    pub name: String,
    pub emails: Vec<String>,
    pub phones: Vec<String>,
    pub external_id: Option<String>,
    pub custom: Map<String, Value>,
    pub assigned_users: Vec<String>,
    pub created_at_ms: i64,
}

#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Conversation {
    pub id: String,
    pub customer: String,
    pub name: String,
    pub status: String,
    pub direction: String,
    pub external_id: Option<String>,
    pub custom: Map<String, Value>,
    pub assigned_users: Vec<String>,
    pub created_at_ms: i64,
    pub updated_at_ms: i64,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct AttachmentRef {
    #[serde(rename = "_id")]
    pub id: String,
    pub name: String,
    #[serde(rename = "contentType")]
    pub content_type: String,
    #[serde(rename = "contentLength")]
    pub content_length: u64,
}

#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Message {
    pub id: String,
    pub conversation: String,
    pub customer: String,
    pub channel: String,
    pub direction: String,
    pub preview: String,
    pub external_id: Option<String>,
    pub custom: Map<String, Value>,
    pub attachments: Vec<AttachmentRef>,
    pub created_at_ms: i64,
}

#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Note {
    pub id: String,
    pub conversation: String,
    pub body: String,
    pub external_id: Option<String>,
    pub attachments: Vec<AttachmentRef>,
    pub created_at_ms: i64,
}

#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Attachment {
    pub id: String,
    pub name: String,
    pub content_type: String,
    pub content_length: u64,
    /// The upload's policy field, checked at upload.
    #[serde(skip)]
    pub policy: String,
    pub uploaded: bool,
}

#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct WorkSession {
    pub id: String,
    pub user: String,
    pub status: String,
    pub active: bool,
    pub signed_in_at_ms: i64,
    pub signed_out_at_ms: Option<i64>,
    pub updated_at_ms: i64,
}

/// One write the org received, in order.
#[derive(Clone, Debug, Serialize)]
pub struct Write {
    pub seq: u64,
    pub at_ms: i64,
    pub method: String,
    pub path: String,
    pub body: Value,
    pub status: u16,
}

/// A custom attribute defined on a klass.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Property {
    pub display_name: String,
    pub created_at_ms: i64,
}

#[derive(Debug, Serialize)]
pub struct KustomerData {
    pub customers: Vec<Customer>,
    pub conversations: Vec<Conversation>,
    pub messages: Vec<Message>,
    pub notes: Vec<Note>,
    pub attachments: Vec<Attachment>,
    pub work_sessions: Vec<WorkSession>,
    /// Custom attributes per klass (`customer`, `conversation`, `message`).
    pub klasses: BTreeMap<String, BTreeMap<String, Property>>,
    #[serde(skip)]
    pub writes: Vec<Write>,
    pub rate_limited: u64,
    #[serde(skip)]
    next_id: u64,
}

impl Default for KustomerData {
    fn default() -> Self {
        let mut klasses: BTreeMap<String, BTreeMap<String, Property>> = BTreeMap::new();
        for klass in ["customer", "conversation", "message"] {
            klasses.insert(klass.into(), BTreeMap::new());
        }
        // The app's standard conversation attributes exist from its installation.
        for field in STANDARD_FIELDS {
            klasses.entry(field.klass.into()).or_default().insert(
                field.name.into(),
                Property {
                    display_name: field.label.into(),
                    created_at_ms: 0,
                },
            );
        }
        KustomerData {
            customers: Vec::new(),
            conversations: Vec::new(),
            messages: Vec::new(),
            notes: Vec::new(),
            attachments: Vec::new(),
            work_sessions: USERS
                .iter()
                .map(|(user, _, _)| WorkSession {
                    id: format!("ws-{user}"),
                    user: (*user).into(),
                    status: "rs-available".into(),
                    active: true,
                    signed_in_at_ms: 0,
                    signed_out_at_ms: None,
                    updated_at_ms: 0,
                })
                .collect(),
            klasses,
            writes: Vec::new(),
            rate_limited: 0,
            next_id: 0,
        }
    }
}

impl KustomerData {
    /// A Kustomer-like id: 24 hexadecimal digits.
    fn new_id(&mut self, kind: u8) -> String {
        self.next_id += 1;
        format!("{kind:02x}{:022x}", self.next_id)
    }

    /// The user's newest work session, active or ended.
    pub fn latest_work_session(&self, user: &str) -> Option<&WorkSession> {
        self.work_sessions.iter().rev().find(|w| w.user == user)
    }

    /// The user picks `status` in the desktop: their active work session takes it, or, when
    /// their last one has ended, a new session starts with it. `None`: no such user or status.
    pub fn user_sets_status(&mut self, user: &str, status: &str) -> Option<&WorkSession> {
        status_type(status)?;
        let now = now_ms();
        let active = self
            .work_sessions
            .iter()
            .rposition(|w| w.user == user && w.active);
        let at = match active {
            Some(at) => at,
            None => {
                if !USERS.iter().any(|(id, _, _)| *id == user) {
                    return None;
                }
                let id = self.new_id(0x35);
                self.work_sessions.push(WorkSession {
                    id,
                    user: user.into(),
                    status: status.into(),
                    active: true,
                    signed_in_at_ms: now,
                    signed_out_at_ms: None,
                    updated_at_ms: now,
                });
                self.work_sessions.len() - 1
            }
        };
        let session = &mut self.work_sessions[at];
        set_status(session, status, now);
        Some(session)
    }
}

/// The `statusType` of a routing status id.
pub fn status_type(status: &str) -> Option<&'static str> {
    ROUTING_STATUSES
        .iter()
        .find(|(id, _, _)| *id == status)
        .map(|(_, _, kind)| *kind)
}

/// A status set on an active session; one of type `offline` ends it.
fn set_status(session: &mut WorkSession, status: &str, now: i64) {
    session.status = status.into();
    session.updated_at_ms = now;
    if status_type(status) == Some("offline") {
        session.active = false;
        session.signed_out_at_ms = Some(now);
    }
}

/// The budget and the faults in force.
#[derive(Clone, Debug, Serialize)]
pub struct Limits {
    pub per_window: u32,
    pub window_ms: i64,
    pub window_start_ms: i64,
    pub used: u32,
    /// The next requests answered 429 whatever the budget (a storm).
    pub rate_limited_left: u32,
    /// The next requests answered 500.
    pub server_errors_left: u32,
    /// The next requests answered 400 (Kustomer refusing the request itself).
    pub client_errors_left: u32,
    /// The next requests answered only after `latency_ms`.
    pub slow_left: u32,
    pub latency_ms: u64,
    /// The next requests answered 401, as if the API key were wrong (a permanent failure).
    pub unauthorized_left: u32,
    /// Faults apply only to requests with this method (any when `None`).
    pub fault_method: Option<String>,
    /// Faults apply only to requests whose path ends with this (any when `None`).
    pub fault_path_ends_with: Option<String>,
}

/// The Kustomer side. Cheap to clone.
#[derive(Clone)]
pub struct Kustomer {
    data: Arc<Mutex<KustomerData>>,
    limits: Arc<Mutex<Limits>>,
    /// The API key the org accepts now (`POST /_sim/kustomer/api-key` rotates it).
    api_key: Arc<Mutex<String>>,
    /// The key it was started with (a reset restores it).
    default_api_key: Arc<String>,
    /// The simulator's own base URL (presigned uploads point here).
    pub api_url: Arc<Mutex<String>>,
    default_per_window: u32,
}

impl std::fmt::Debug for Kustomer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Kustomer")
            .field("api_key", &"***")
            .finish_non_exhaustive()
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl Kustomer {
    pub fn new(api_key: String, per_minute: u32) -> Self {
        Kustomer {
            data: Arc::default(),
            limits: Arc::new(Mutex::new(Limits {
                per_window: per_minute.max(1),
                window_ms: DEFAULT_WINDOW_MS,
                window_start_ms: 0,
                used: 0,
                rate_limited_left: 0,
                server_errors_left: 0,
                client_errors_left: 0,
                slow_left: 0,
                latency_ms: 0,
                unauthorized_left: 0,
                fault_method: None,
                fault_path_ends_with: None,
            })),
            api_key: Arc::new(Mutex::new(api_key.clone())),
            default_api_key: Arc::new(api_key),
            api_url: Arc::default(),
            default_per_window: per_minute.max(1),
        }
    }

    pub fn data(&self) -> MutexGuard<'_, KustomerData> {
        lock(&self.data)
    }

    pub fn limits(&self) -> Limits {
        lock(&self.limits).clone()
    }

    /// Everything the org holds, for `/_sim/state`.
    pub fn snapshot(&self) -> Value {
        let data = self.data();
        let mut value = serde_json::to_value(&*data).unwrap_or_default();
        value["users"] = json!(USERS
            .iter()
            .map(|(id, email, name)| json!({"id": id, "email": email, "name": name}))
            .collect::<Vec<_>>());
        value["writes_count"] = json!(data.writes.len());
        value["limits"] = serde_json::to_value(self.limits()).unwrap_or_default();
        value
    }

    /// Back to the initial data; ids keep counting, so that an id never names two records (a
    /// gateway may still hold one from before the reset, as the CCAI side's call ids).
    pub fn reset(&self) {
        {
            let mut data = self.data();
            let next_id = data.next_id;
            *data = KustomerData::default();
            data.next_id = data.next_id.max(next_id);
        }
        *lock(&self.api_key) = (*self.default_api_key).clone();
        let mut limits = lock(&self.limits);
        *limits = Limits {
            per_window: self.default_per_window,
            window_ms: DEFAULT_WINDOW_MS,
            window_start_ms: 0,
            used: 0,
            rate_limited_left: 0,
            server_errors_left: 0,
            client_errors_left: 0,
            slow_left: 0,
            latency_ms: 0,
            unauthorized_left: 0,
            fault_method: None,
            fault_path_ends_with: None,
        };
    }

    fn authorised(&self, headers: &HeaderMap) -> bool {
        let accepted = lock(&self.api_key).clone();
        headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .is_some_and(|key| constant_time_eq(key.trim().as_bytes(), accepted.as_bytes()))
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

// ---- Errors, in both formats --------------------------------------------------------------

/// JSON:API error: `{errors: [{status, code, title, detail, source: {pointer}}]}`.
fn json_api_error(status: StatusCode, code: &str, detail: &str, pointer: Option<&str>) -> Response {
    let mut error = json!({
        "status": status.as_u16().to_string(),
        "code": code,
        "title": status.canonical_reason().unwrap_or("Error"),
        "detail": detail,
    });
    if let Some(pointer) = pointer {
        error["source"] = json!({ "pointer": pointer });
    }
    (status, Json(json!({ "errors": [error] }))).into_response()
}

/// The other format: `{errors: [{code, message, meta}]}`.
fn plain_error(status: StatusCode, code: &str, message: &str, meta: Value) -> Response {
    (
        status,
        Json(json!({"errors": [{"code": code, "message": message, "meta": meta}]})),
    )
        .into_response()
}

fn bad_request(detail: &str, pointer: &str) -> Response {
    json_api_error(StatusCode::BAD_REQUEST, "invalid", detail, Some(pointer))
}

fn not_found(what: &str) -> Response {
    json_api_error(
        StatusCode::NOT_FOUND,
        "not_found",
        &format!("{what} not found"),
        None,
    )
}

// ---- The guard: faults, key, budget, headers, the write log ----------------------------------

/// Before every `/v1` route: injected faults, the API key, the org's budget; after: the
/// rate-limit headers, and writes logged with their bodies.
pub async fn guard(State(kustomer): State<Kustomer>, request: Request, next: Next) -> Response {
    let now = now_ms();
    let (verdict, limit, remaining, reset_s, delay) = {
        let mut limits = lock(&kustomer.limits);
        if now >= limits.window_start_ms + limits.window_ms {
            limits.window_start_ms = now - now.rem_euclid(limits.window_ms.max(1));
            limits.used = 0;
        }
        let reset_s = (limits.window_start_ms + limits.window_ms + 999) / 1000;
        let targeted = limits
            .fault_method
            .as_deref()
            .is_none_or(|m| request.method().as_str().eq_ignore_ascii_case(m))
            && limits
                .fault_path_ends_with
                .as_deref()
                .is_none_or(|p| request.uri().path().ends_with(p));
        let delay = if targeted && limits.slow_left > 0 {
            limits.slow_left -= 1;
            limits.latency_ms
        } else {
            0
        };
        let verdict = if targeted && limits.unauthorized_left > 0 {
            limits.unauthorized_left -= 1;
            Some(StatusCode::UNAUTHORIZED)
        } else if targeted && limits.server_errors_left > 0 {
            limits.server_errors_left -= 1;
            Some(StatusCode::INTERNAL_SERVER_ERROR)
        } else if targeted && limits.client_errors_left > 0 {
            limits.client_errors_left -= 1;
            Some(StatusCode::BAD_REQUEST)
        } else if targeted && limits.rate_limited_left > 0 {
            limits.rate_limited_left -= 1;
            Some(StatusCode::TOO_MANY_REQUESTS)
        } else if limits.used >= limits.per_window {
            Some(StatusCode::TOO_MANY_REQUESTS)
        } else {
            limits.used += 1;
            None
        };
        (
            verdict,
            limits.per_window,
            limits.per_window.saturating_sub(limits.used),
            reset_s,
            delay,
        )
    };
    if delay > 0 {
        tokio::time::sleep(std::time::Duration::from_millis(delay)).await;
    }
    let retry_after = (reset_s * 1000 - now).max(0) / 1000 + 1;
    let mut response = match verdict {
        Some(StatusCode::TOO_MANY_REQUESTS) => {
            kustomer.data().rate_limited += 1;
            let mut response = plain_error(
                StatusCode::TOO_MANY_REQUESTS,
                "rate_limited",
                "Too many requests for this organization; slow down",
                json!({ "limit": limit }),
            );
            if let Ok(value) = HeaderValue::from_str(&retry_after.to_string()) {
                response.headers_mut().insert(header::RETRY_AFTER, value);
            }
            response
        }
        Some(StatusCode::BAD_REQUEST) => json_api_error(
            StatusCode::BAD_REQUEST,
            "invalid",
            "Simulated refusal of this request",
            None,
        ),
        Some(StatusCode::UNAUTHORIZED) => json_api_error(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "a valid API key is required (Authorization: Bearer)",
            None,
        ),
        Some(status) => plain_error(status, "internal", "Something went wrong", json!({})),
        None if !kustomer.authorised(request.headers()) => json_api_error(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "a valid API key is required (Authorization: Bearer)",
            None,
        ),
        None => {
            let method = request.method().clone();
            let path = request.uri().path().to_owned();
            if method == Method::GET {
                next.run(request).await
            } else {
                // Writes are logged with their body: buffer it, then hand it on.
                let (parts, body) = request.into_parts();
                let bytes = axum::body::to_bytes(body, MAX_ATTACHMENT_BYTES)
                    .await
                    .unwrap_or_default();
                let logged: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
                let request = Request::from_parts(parts, axum::body::Body::from(bytes));
                let response = next.run(request).await;
                let mut data = kustomer.data();
                let seq = data.writes.len() as u64 + 1;
                data.writes.push(Write {
                    seq,
                    at_ms: now,
                    method: method.to_string(),
                    path,
                    body: logged,
                    status: response.status().as_u16(),
                });
                response
            }
        }
    };
    let headers = response.headers_mut();
    for (name, value) in [
        ("x-ratelimit-limit", limit.to_string()),
        ("x-ratelimit-remaining", remaining.to_string()),
        ("x-ratelimit-reset", reset_s.to_string()),
    ] {
        if let Ok(value) = HeaderValue::from_str(&value) {
            headers.insert(header::HeaderName::from_static(name), value);
        }
    }
    response
}

/// The `/v1` routes (behind [`guard`]) and the Kustomer test endpoints.
pub fn routes(kustomer: Kustomer) -> Router<crate::SimState> {
    Router::new()
        .route("/v1/customers", post(create_customer))
        .route(
            "/v1/customers/{key}",
            get(get_customer).put(update_customer),
        )
        .route(
            "/v1/customers/{id}/conversations",
            get(customer_conversations),
        )
        .route("/v1/conversations", post(create_conversation))
        .route(
            "/v1/conversations/{id}",
            get(get_conversation).put(update_conversation),
        )
        .route(
            "/v1/conversations/{id}/messages",
            post(create_message).get(conversation_messages),
        )
        .route(
            "/v1/conversations/{id}/notes",
            post(create_note).get(conversation_notes),
        )
        .route("/v1/messages/{id}", put(update_message))
        .route("/v1/attachments", post(create_attachment))
        .route("/v1/users", get(users))
        .route("/v1/metadata/{klass}", get(metadata).put(update_metadata))
        .route("/v1/routing/statuses", get(routing_statuses))
        .route("/v1/routing/work-sessions", get(work_sessions))
        .route(
            "/v1/routing/work-sessions/{id}",
            get(work_session).put(set_work_session),
        )
        .route(
            "/v1/routing/users/{id}/work-sessions",
            get(user_work_sessions),
        )
        .route_layer(axum::middleware::from_fn_with_state(
            kustomer.clone(),
            guard,
        ))
        // The presigned upload stands in for the storage service: no API key, no budget.
        .route("/_sim/kustomer/uploads/{id}", post(upload))
        .route("/_sim/kustomer/writes", get(writes))
        .route("/_sim/kustomer/faults", post(set_faults))
        .route("/_sim/kustomer/limits", post(set_limits))
        .route("/_sim/kustomer/api-key", post(set_api_key))
        .route(
            "/_sim/kustomer/customers/{id}",
            axum::routing::delete(remove_customer),
        )
}

// ---- Bodies ----------------------------------------------------------------------------------

/// A body decoded into `T`, or a 400 saying why.
fn decode<T: serde::de::DeserializeOwned>(body: &Bytes) -> Result<T, Response> {
    serde_json::from_slice(body).map_err(|e| {
        json_api_error(
            StatusCode::BAD_REQUEST,
            "invalid_body",
            &format!("the body could not be read: {e}"),
            Some("/data"),
        )
    })
}

/// Checks `custom` against the klass: every attribute defined, every value of its type.
fn check_custom(
    data: &KustomerData,
    klass: &str,
    custom: &Map<String, Value>,
) -> Result<(), Response> {
    let defined = data.klasses.get(klass);
    for (name, value) in custom {
        let pointer = format!("/data/attributes/custom/{name}");
        let Some(kind) = attribute_type(name) else {
            return Err(bad_request(
                &format!("custom attribute {name:?} must end in Str, Txt, Num, At, Bool or Url"),
                &pointer,
            ));
        };
        if !defined.is_some_and(|d| d.contains_key(name)) {
            return Err(bad_request(
                &format!("custom attribute {name:?} is not defined on {klass}"),
                &pointer,
            ));
        }
        let fits = match (kind, value) {
            (_, Value::Null) => true,
            (AttributeType::Str, Value::String(s)) => s.chars().count() <= 1024,
            (AttributeType::Txt, Value::String(_)) => true,
            (AttributeType::Url, Value::String(s)) => {
                s.starts_with("https://") || s.starts_with("http://")
            }
            (AttributeType::At, Value::String(s)) => {
                adapter_core::iso_time::parse_utc_ms(s).is_some()
            }
            (AttributeType::Num, Value::Number(_)) => true,
            (AttributeType::Bool, Value::Bool(_)) => true,
            _ => false,
        };
        if !fits {
            return Err(bad_request(
                &format!("custom attribute {name:?} has a value of the wrong type"),
                &pointer,
            ));
        }
    }
    Ok(())
}

fn merge(target: &mut Map<String, Value>, patch: Map<String, Value>) {
    for (k, v) in patch {
        if v.is_null() {
            target.remove(&k);
        } else {
            target.insert(k, v);
        }
    }
}

fn known_users(ids: &[String]) -> Result<(), Response> {
    match ids.iter().find(|id| !USERS.iter().any(|(u, _, _)| u == id)) {
        Some(id) => Err(bad_request(
            &format!("assignedUsers: unknown user {id:?}"),
            "/data/attributes/assignedUsers",
        )),
        None => Ok(()),
    }
}

// ---- Resources as Kustomer shows them ---------------------------------------------------------

fn iso(ms: i64) -> String {
    adapter_core::iso_time::format_utc_ms(ms)
}

fn customer_json(c: &Customer) -> Value {
    json!({
        "type": "customer", "id": c.id,
        "attributes": {
            "name": c.name,
            "emails": c.emails.iter().map(|e| json!({"email": e})).collect::<Vec<_>>(),
            "phones": c.phones.iter().map(|p| json!({"phone": p, "type": "mobile"})).collect::<Vec<_>>(),
            "externalId": c.external_id, "custom": c.custom,
            "assignedUsers": c.assigned_users, "createdAt": iso(c.created_at_ms),
        },
    })
}

fn conversation_json(c: &Conversation) -> Value {
    json!({
        "type": "conversation", "id": c.id,
        "attributes": {
            "name": c.name, "status": c.status, "direction": c.direction,
            "externalId": c.external_id, "custom": c.custom,
            "assignedUsers": c.assigned_users,
            "createdAt": iso(c.created_at_ms), "updatedAt": iso(c.updated_at_ms),
        },
        "relationships": {"customer": {"data": {"type": "customer", "id": c.customer}}},
    })
}

fn message_json(m: &Message) -> Value {
    json!({
        "type": "message", "id": m.id,
        "attributes": {
            "channel": m.channel, "direction": m.direction, "preview": m.preview,
            "externalId": m.external_id, "custom": m.custom, "attachments": m.attachments,
            "createdAt": iso(m.created_at_ms),
        },
        "relationships": {
            "conversation": {"data": {"type": "conversation", "id": m.conversation}},
            "customer": {"data": {"type": "customer", "id": m.customer}},
        },
    })
}

fn note_json(n: &Note) -> Value {
    json!({
        "type": "note", "id": n.id,
        "attributes": {"body": n.body, "externalId": n.external_id, "attachments": n.attachments,
            "createdAt": iso(n.created_at_ms)},
        "relationships": {"conversation": {"data": {"type": "conversation", "id": n.conversation}}},
    })
}

fn created(data: Value) -> Response {
    (StatusCode::CREATED, Json(json!({ "data": data }))).into_response()
}

fn ok(data: Value) -> Response {
    Json(json!({ "data": data })).into_response()
}

// ---- Customers -------------------------------------------------------------------------------

#[derive(Deserialize)]
struct EmailIn {
    email: String,
}

#[derive(Deserialize)]
struct PhoneIn {
    phone: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct CustomerIn {
    name: Option<String>,
    #[serde(default)]
    emails: Vec<EmailIn>,
    #[serde(default)]
    phones: Vec<PhoneIn>,
    external_id: Option<String>,
    #[serde(default)]
    custom: Map<String, Value>,
    #[serde(default)]
    assigned_users: Option<Vec<String>>,
}

fn duplicate(data: &KustomerData, c: &CustomerIn, except: Option<&str>) -> Option<Response> {
    for other in data
        .customers
        .iter()
        .filter(|o| Some(o.id.as_str()) != except)
    {
        let clash = c
            .emails
            .iter()
            .find(|e| {
                other
                    .emails
                    .iter()
                    .any(|o| o.eq_ignore_ascii_case(&e.email))
            })
            .map(|e| ("email", e.email.clone()))
            .or_else(|| {
                c.phones
                    .iter()
                    .find(|p| other.phones.contains(&p.phone))
                    .map(|p| ("phone", p.phone.clone()))
            })
            .or_else(|| {
                c.external_id
                    .as_ref()
                    .filter(|x| other.external_id.as_ref() == Some(*x))
                    .map(|x| ("externalId", x.clone()))
            });
        if let Some((field, value)) = clash {
            return Some(plain_error(
                StatusCode::CONFLICT,
                "duplicate",
                &format!("{field} {value} already belongs to customer {}", other.id),
                json!({"field": field, "customerId": other.id}),
            ));
        }
    }
    None
}

async fn create_customer(State(k): State<Kustomer>, body: Bytes) -> Response {
    let input: CustomerIn = match decode(&body) {
        Ok(c) => c,
        Err(r) => return r,
    };
    let mut data = k.data();
    if let Err(r) = check_custom(&data, "customer", &input.custom) {
        return r;
    }
    if let Some(r) = duplicate(&data, &input, None) {
        return r;
    }
    if let Err(r) = known_users(input.assigned_users.as_deref().unwrap_or_default()) {
        return r;
    }
    let id = data.new_id(0xc1);
    let customer = Customer {
        id,
        name: input.name.unwrap_or_default(),
        emails: input
            .emails
            .into_iter()
            .map(|e| e.email.to_lowercase())
            .collect(),
        phones: input.phones.into_iter().map(|p| p.phone).collect(),
        external_id: input.external_id,
        custom: input.custom,
        assigned_users: input.assigned_users.unwrap_or_default(),
        created_at_ms: now_ms(),
    };
    let out = customer_json(&customer);
    data.customers.push(customer);
    created(out)
}

/// `GET /v1/customers/{id}`, `/v1/customers/phone={phone}`, `email={email}`,
/// `externalId={id}`.
async fn get_customer(State(k): State<Kustomer>, Path(key): Path<String>) -> Response {
    let data = k.data();
    let found = if let Some(phone) = key.strip_prefix("phone=") {
        data.customers
            .iter()
            .find(|c| c.phones.iter().any(|p| p == phone))
    } else if let Some(email) = key.strip_prefix("email=") {
        data.customers
            .iter()
            .find(|c| c.emails.iter().any(|e| e.eq_ignore_ascii_case(email)))
    } else if let Some(external) = key.strip_prefix("externalId=") {
        data.customers
            .iter()
            .find(|c| c.external_id.as_deref() == Some(external))
    } else {
        data.customers.iter().find(|c| c.id == key)
    };
    match found {
        Some(c) => ok(customer_json(c)),
        None => not_found("customer"),
    }
}

async fn update_customer(
    State(k): State<Kustomer>,
    Path(id): Path<String>,
    body: Bytes,
) -> Response {
    let input: CustomerIn = match decode(&body) {
        Ok(c) => c,
        Err(r) => return r,
    };
    let mut data = k.data();
    if let Err(r) = check_custom(&data, "customer", &input.custom) {
        return r;
    }
    if let Some(r) = duplicate(&data, &input, Some(&id)) {
        return r;
    }
    if let Err(r) = known_users(input.assigned_users.as_deref().unwrap_or_default()) {
        return r;
    }
    let Some(c) = data.customers.iter_mut().find(|c| c.id == id) else {
        return not_found("customer");
    };
    if let Some(name) = input.name {
        c.name = name;
    }
    if let Some(users) = input.assigned_users {
        c.assigned_users = users;
    }
    merge(&mut c.custom, input.custom);
    ok(customer_json(c))
}

async fn customer_conversations(State(k): State<Kustomer>, Path(id): Path<String>) -> Response {
    let data = k.data();
    if !data.customers.iter().any(|c| c.id == id) {
        return not_found("customer");
    }
    let mut list: Vec<&Conversation> = data
        .conversations
        .iter()
        .filter(|c| c.customer == id)
        .collect();
    list.sort_by_key(|c| std::cmp::Reverse(c.created_at_ms));
    ok(Value::Array(
        list.into_iter().map(conversation_json).collect(),
    ))
}

// ---- Conversations ---------------------------------------------------------------------------

const STATUSES: [&str; 3] = ["open", "snoozed", "done"];

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ConversationIn {
    customer: Option<String>,
    name: Option<String>,
    status: Option<String>,
    direction: Option<String>,
    external_id: Option<String>,
    #[serde(default)]
    custom: Map<String, Value>,
    assigned_users: Option<Vec<String>>,
}

async fn create_conversation(State(k): State<Kustomer>, body: Bytes) -> Response {
    let input: ConversationIn = match decode(&body) {
        Ok(c) => c,
        Err(r) => return r,
    };
    let mut data = k.data();
    let Some(customer) = input.customer else {
        return bad_request("customer is required", "/data/attributes/customer");
    };
    if !data.customers.iter().any(|c| c.id == customer) {
        return bad_request("customer does not exist", "/data/attributes/customer");
    }
    let status = input.status.unwrap_or_else(|| "open".into());
    if !STATUSES.contains(&status.as_str()) {
        return bad_request(
            "status must be open, snoozed or done",
            "/data/attributes/status",
        );
    }
    let direction = input.direction.unwrap_or_else(|| "in".into());
    if !["in", "out"].contains(&direction.as_str()) {
        return bad_request("direction must be in or out", "/data/attributes/direction");
    }
    if let Err(r) = check_custom(&data, "conversation", &input.custom) {
        return r;
    }
    if let Err(r) = known_users(input.assigned_users.as_deref().unwrap_or_default()) {
        return r;
    }
    let now = now_ms();
    let id = data.new_id(0xc0);
    let conversation = Conversation {
        id,
        customer,
        name: input.name.unwrap_or_default(),
        status,
        direction,
        external_id: input.external_id,
        custom: input.custom,
        assigned_users: input.assigned_users.unwrap_or_default(),
        created_at_ms: now,
        updated_at_ms: now,
    };
    let out = conversation_json(&conversation);
    data.conversations.push(conversation);
    created(out)
}

async fn get_conversation(State(k): State<Kustomer>, Path(id): Path<String>) -> Response {
    match k.data().conversations.iter().find(|c| c.id == id) {
        Some(c) => ok(conversation_json(c)),
        None => not_found("conversation"),
    }
}

async fn update_conversation(
    State(k): State<Kustomer>,
    Path(id): Path<String>,
    body: Bytes,
) -> Response {
    let input: ConversationIn = match decode(&body) {
        Ok(c) => c,
        Err(r) => return r,
    };
    let mut data = k.data();
    if let Err(r) = check_custom(&data, "conversation", &input.custom) {
        return r;
    }
    if let Err(r) = known_users(input.assigned_users.as_deref().unwrap_or_default()) {
        return r;
    }
    if input
        .status
        .as_deref()
        .is_some_and(|s| !STATUSES.contains(&s))
    {
        return bad_request(
            "status must be open, snoozed or done",
            "/data/attributes/status",
        );
    }
    let Some(c) = data.conversations.iter_mut().find(|c| c.id == id) else {
        return not_found("conversation");
    };
    if let Some(status) = input.status {
        c.status = status;
    }
    if let Some(name) = input.name {
        c.name = name;
    }
    if let Some(users) = input.assigned_users {
        c.assigned_users = users;
    }
    merge(&mut c.custom, input.custom);
    c.updated_at_ms = now_ms();
    ok(conversation_json(c))
}

// ---- Messages, notes, attachments ------------------------------------------------------------

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct MessageIn {
    channel: Option<String>,
    direction: Option<String>,
    preview: Option<String>,
    external_id: Option<String>,
    #[serde(default)]
    custom: Map<String, Value>,
    #[serde(default)]
    attachments: Vec<AttachmentRef>,
}

fn check_attachments(data: &KustomerData, refs: &[AttachmentRef]) -> Result<(), Response> {
    for r in refs {
        let known = data.attachments.iter().find(|a| a.id == r.id);
        match known {
            Some(a) if a.uploaded && a.content_length == r.content_length && a.name == r.name => {}
            Some(a) if !a.uploaded => {
                return Err(bad_request(
                    &format!("attachment {} was never uploaded", r.id),
                    "/data/attributes/attachments",
                ))
            }
            _ => {
                return Err(bad_request(
                    &format!("attachment {} does not match an uploaded file", r.id),
                    "/data/attributes/attachments",
                ))
            }
        }
    }
    Ok(())
}

async fn create_message(
    State(k): State<Kustomer>,
    Path(id): Path<String>,
    body: Bytes,
) -> Response {
    let input: MessageIn = match decode(&body) {
        Ok(m) => m,
        Err(r) => return r,
    };
    let mut data = k.data();
    let Some(customer) = data
        .conversations
        .iter()
        .find(|c| c.id == id)
        .map(|c| c.customer.clone())
    else {
        return not_found("conversation");
    };
    let channel = input.channel.unwrap_or_default();
    if !["voice", "chat", "email", "sms"].contains(&channel.as_str()) {
        return bad_request(
            "channel must be voice, chat, email or sms",
            "/data/attributes/channel",
        );
    }
    let direction = input.direction.unwrap_or_default();
    if !["in", "out"].contains(&direction.as_str()) {
        return bad_request("direction must be in or out", "/data/attributes/direction");
    }
    if let Err(r) = check_custom(&data, "message", &input.custom) {
        return r;
    }
    if let Err(r) = check_attachments(&data, &input.attachments) {
        return r;
    }
    let message_id = data.new_id(0xa1);
    let message = Message {
        id: message_id,
        conversation: id,
        customer,
        channel,
        direction,
        preview: input.preview.unwrap_or_default(),
        external_id: input.external_id,
        custom: input.custom,
        attachments: input.attachments,
        created_at_ms: now_ms(),
    };
    let out = message_json(&message);
    data.messages.push(message);
    created(out)
}

async fn conversation_messages(State(k): State<Kustomer>, Path(id): Path<String>) -> Response {
    let data = k.data();
    if !data.conversations.iter().any(|c| c.id == id) {
        return not_found("conversation");
    }
    ok(Value::Array(
        data.messages
            .iter()
            .filter(|m| m.conversation == id)
            .map(message_json)
            .collect(),
    ))
}

async fn update_message(
    State(k): State<Kustomer>,
    Path(id): Path<String>,
    body: Bytes,
) -> Response {
    let input: MessageIn = match decode(&body) {
        Ok(m) => m,
        Err(r) => return r,
    };
    let mut data = k.data();
    if let Err(r) = check_custom(&data, "message", &input.custom) {
        return r;
    }
    let Some(m) = data.messages.iter_mut().find(|m| m.id == id) else {
        return not_found("message");
    };
    merge(&mut m.custom, input.custom);
    ok(message_json(m))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct NoteIn {
    body: Option<String>,
    external_id: Option<String>,
    #[serde(default)]
    attachments: Vec<AttachmentRef>,
}

/// `POST /v1/conversations/{id}/notes` `{"body"}` (as public code creates notes; `externalId`
/// and `attachments` are the gateway's assumption, accepted here too).
async fn create_note(
    State(k): State<Kustomer>,
    Path(conversation): Path<String>,
    body: Bytes,
) -> Response {
    let input: NoteIn = match decode(&body) {
        Ok(n) => n,
        Err(r) => return r,
    };
    let mut data = k.data();
    if !data.conversations.iter().any(|c| c.id == conversation) {
        return not_found("conversation");
    }
    let text = input.body.unwrap_or_default();
    let count = text.chars().count();
    if !(1..=MAX_NOTE_CHARS).contains(&count) {
        return bad_request(
            &format!("body must be 1 to {MAX_NOTE_CHARS} characters"),
            "/data/attributes/body",
        );
    }
    if let Err(r) = check_attachments(&data, &input.attachments) {
        return r;
    }
    let id = data.new_id(0xe0);
    let note = Note {
        id,
        conversation,
        body: text,
        external_id: input.external_id,
        attachments: input.attachments,
        created_at_ms: now_ms(),
    };
    let out = note_json(&note);
    data.notes.push(note);
    created(out)
}

async fn conversation_notes(State(k): State<Kustomer>, Path(id): Path<String>) -> Response {
    let data = k.data();
    if !data.conversations.iter().any(|c| c.id == id) {
        return not_found("conversation");
    }
    ok(Value::Array(
        data.notes
            .iter()
            .filter(|n| n.conversation == id)
            .map(note_json)
            .collect(),
    ))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct AttachmentIn {
    name: Option<String>,
    content_type: Option<String>,
    content_length: Option<u64>,
}

async fn create_attachment(State(k): State<Kustomer>, body: Bytes) -> Response {
    let input: AttachmentIn = match decode(&body) {
        Ok(a) => a,
        Err(r) => return r,
    };
    let Some(name) = input.name.filter(|n| !n.is_empty() && n.len() <= 255) else {
        return bad_request(
            "name is required (at most 255 characters)",
            "/data/attributes/name",
        );
    };
    let Some(content_type) = input.content_type.filter(|c| c.contains('/')) else {
        return bad_request("contentType is required", "/data/attributes/contentType");
    };
    let Some(length) = input
        .content_length
        .filter(|l| (1..=MAX_ATTACHMENT_BYTES as u64).contains(l))
    else {
        return bad_request(
            &format!("contentLength must be 1 to {MAX_ATTACHMENT_BYTES}"),
            "/data/attributes/contentLength",
        );
    };
    let base = lock(&k.api_url).clone();
    let mut data = k.data();
    let id = data.new_id(0xf1);
    let policy = format!("policy-{id}");
    data.attachments.push(Attachment {
        id: id.clone(),
        name: name.clone(),
        content_type: content_type.clone(),
        content_length: length,
        policy: policy.clone(),
        uploaded: false,
    });
    created(json!({
        "type": "attachment", "id": id,
        "attributes": {"name": name, "contentType": content_type, "contentLength": length},
        "meta": {"upload": {
            "url": format!("{base}/_sim/kustomer/uploads/{id}"),
            "fields": {"key": format!("attachments/{id}/{name}"), "Content-Type": content_type, "policy": policy},
        }},
    }))
}

/// The parts of a `multipart/form-data` body: `(name, bytes)` in order.
fn multipart_parts(content_type: &str, body: &[u8]) -> Option<Vec<(String, Vec<u8>)>> {
    let boundary = content_type
        .split(';')
        .find_map(|p| p.trim().strip_prefix("boundary="))?
        .trim_matches('"');
    let delimiter = format!("--{boundary}");
    let mut parts = Vec::new();
    let mut rest = body;
    let find = |hay: &[u8], needle: &[u8]| hay.windows(needle.len()).position(|w| w == needle);
    let start = find(rest, delimiter.as_bytes())?;
    rest = &rest[start + delimiter.len()..];
    loop {
        if rest.starts_with(b"--") {
            return Some(parts);
        }
        rest = rest.strip_prefix(b"\r\n")?;
        let header_end = find(rest, b"\r\n\r\n")?;
        let headers = std::str::from_utf8(&rest[..header_end]).ok()?;
        let name = headers
            .split("\r\n")
            .find(|l| l.to_ascii_lowercase().starts_with("content-disposition"))?
            .split(';')
            .find_map(|p| p.trim().strip_prefix("name="))?
            .trim_matches('"')
            .to_owned();
        rest = &rest[header_end + 4..];
        let end_marker = format!("\r\n{delimiter}");
        let end = find(rest, end_marker.as_bytes())?;
        parts.push((name, rest[..end].to_vec()));
        rest = &rest[end + end_marker.len()..];
    }
}

/// `POST /_sim/kustomer/uploads/{id}`: the presigned upload (fields first, `file` last).
async fn upload(
    State(k): State<Kustomer>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let Some(parts) = multipart_parts(content_type, &body) else {
        return (StatusCode::BAD_REQUEST, "expected multipart/form-data").into_response();
    };
    let mut data = k.data();
    let Some(attachment) = data.attachments.iter_mut().find(|a| a.id == id) else {
        return (StatusCode::NOT_FOUND, "no such upload").into_response();
    };
    let Some(((last, file), fields)) = parts
        .split_last()
        .map(|(l, f)| ((l.0.clone(), l.1.clone()), f))
    else {
        return (StatusCode::BAD_REQUEST, "no parts").into_response();
    };
    if last != "file" {
        return (StatusCode::BAD_REQUEST, "the file must be the last part").into_response();
    }
    let policy_ok = fields
        .iter()
        .any(|(n, v)| n == "policy" && v.as_slice() == attachment.policy.as_bytes());
    if !policy_ok {
        return (StatusCode::FORBIDDEN, "the upload's fields do not match").into_response();
    }
    if file.len() as u64 != attachment.content_length {
        return (
            StatusCode::BAD_REQUEST,
            format!(
                "the file is {} bytes, the attachment says {}",
                file.len(),
                attachment.content_length
            ),
        )
            .into_response();
    }
    attachment.uploaded = true;
    StatusCode::NO_CONTENT.into_response()
}

// ---- Users, metadata, routing ----------------------------------------------------------------

#[derive(Deserialize)]
struct UserQuery {
    email: Option<String>,
}

/// `GET /v1/users[?email=…]`.
async fn users(Query(query): Query<UserQuery>) -> Response {
    let list: Vec<Value> = USERS
        .iter()
        .filter(|(_, email, _)| {
            query
                .email
                .as_deref()
                .is_none_or(|q| email.eq_ignore_ascii_case(q.trim()))
        })
        .map(|(id, email, name)| json!({"type": "user", "id": id, "attributes": {"email": email, "displayName": name}}))
        .collect();
    ok(Value::Array(list))
}

async fn metadata(State(k): State<Kustomer>, Path(klass): Path<String>) -> Response {
    let data = k.data();
    match data.klasses.get(&klass) {
        Some(properties) => {
            ok(json!({"type": "klass", "id": klass, "attributes": {"properties": properties}}))
        }
        None => not_found("klass"),
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct PropertyIn {
    display_name: Option<String>,
}

#[derive(Deserialize)]
struct MetadataIn {
    properties: BTreeMap<String, PropertyIn>,
}

/// `PUT /v1/metadata/{klass}` with `{properties: {name: {displayName}}}`: defines attributes
/// (existing ones are kept as they are).
async fn update_metadata(
    State(k): State<Kustomer>,
    Path(klass): Path<String>,
    body: Bytes,
) -> Response {
    let input: MetadataIn = match decode(&body) {
        Ok(m) => m,
        Err(r) => return r,
    };
    let mut data = k.data();
    let Some(properties) = data.klasses.get_mut(&klass) else {
        return not_found("klass");
    };
    for (name, property) in &input.properties {
        if attribute_type(name).is_none() {
            return bad_request(
                &format!("property {name:?} must end in Str, Txt, Num, At, Bool or Url"),
                &format!("/data/attributes/properties/{name}"),
            );
        }
        if property.display_name.as_deref().is_none_or(str::is_empty) {
            return bad_request(
                "displayName is required",
                &format!("/data/attributes/properties/{name}/displayName"),
            );
        }
    }
    let now = now_ms();
    for (name, property) in input.properties {
        properties.entry(name).or_insert(Property {
            display_name: property.display_name.unwrap_or_default(),
            created_at_ms: now,
        });
    }
    ok(json!({"type": "klass", "id": klass, "attributes": {"properties": properties}}))
}

/// `GET /v1/routing/statuses`: `{data: [{type: "status", id, attributes: {name, statusType,
/// selectable, system, enabled}}]}`.
async fn routing_statuses() -> Response {
    ok(Value::Array(
        ROUTING_STATUSES
            .iter()
            .map(|(id, name, kind)| {
                json!({"type": "status", "id": id,
                    "attributes": {"name": name, "statusType": kind, "selectable": true,
                        "system": matches!(*kind, "available" | "busy"), "enabled": true},
                    "links": {"self": format!("/v1/routing/statuses/{id}")}})
            })
            .collect(),
    ))
}

/// A work session as Kustomer sends it: `{type: "work_session", id, attributes {statusType,
/// routable, active, signedInAt, signedOutAt, …}, relationships {user, status, team, queues}}`.
fn work_session_json(w: &WorkSession) -> Value {
    let kind = status_type(&w.status).unwrap_or("unavailable");
    json!({
        "type": "work_session", "id": w.id,
        "attributes": {
            "statusType": kind, "routable": kind == "available", "active": w.active,
            "signedInAt": iso(w.signed_in_at_ms),
            "signedOutAt": w.signed_out_at_ms.map(iso),
            "workItemCount": 0, "createdAt": iso(w.signed_in_at_ms), "updatedAt": iso(w.updated_at_ms),
        },
        "relationships": {
            "user": {"data": {"type": "user", "id": w.user}},
            "status": {"data": {"type": "status", "id": w.status}},
            "team": {"data": null},
            "queues": {"data": []},
        },
        "links": {"self": format!("/v1/routing/work-sessions/{}", w.id)},
    })
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct WorkSessionQuery {
    user: Option<String>,
    active: Option<bool>,
    status_type: Option<String>,
}

/// `GET /v1/routing/work-sessions[?user=true|false&active=true|false&statusType=…]`: `user=true`
/// is the calling user's (the API key's, [`API_KEY_USER`]), as documented; another user's are
/// read with `GET /v1/routing/users/{id}/work-sessions`.
async fn work_sessions(
    State(k): State<Kustomer>,
    Query(query): Query<WorkSessionQuery>,
) -> Response {
    let mine = match query.user.as_deref() {
        None | Some("false") => false,
        Some("true") => true,
        Some(_) => {
            return json_api_error(
                StatusCode::BAD_REQUEST,
                "invalid",
                "user must be true or false (another user's sessions: /v1/routing/users/{id}/work-sessions)",
                None,
            )
        }
    };
    let data = k.data();
    ok(Value::Array(
        data.work_sessions
            .iter()
            .filter(|w| !mine || w.user == API_KEY_USER)
            .filter(|w| query.active.is_none_or(|a| a == w.active))
            .filter(|w| {
                query
                    .status_type
                    .as_deref()
                    .is_none_or(|t| status_type(&w.status) == Some(t))
            })
            .map(work_session_json)
            .collect(),
    ))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct PageQuery {
    page: Option<usize>,
    page_size: Option<usize>,
}

/// `GET /v1/routing/users/{id}/work-sessions[?page=&pageSize=]`: the user's sessions, newest
/// first, paginated (`links.next` while there are more).
async fn user_work_sessions(
    State(k): State<Kustomer>,
    Path(user): Path<String>,
    Query(paging): Query<PageQuery>,
) -> Response {
    if !USERS.iter().any(|(id, _, _)| *id == user) {
        return not_found("user");
    }
    let page = paging.page.unwrap_or(1).max(1);
    let size = paging.page_size.unwrap_or(100).clamp(1, 100);
    let data = k.data();
    let all: Vec<&WorkSession> = data
        .work_sessions
        .iter()
        .rev()
        .filter(|w| w.user == user)
        .collect();
    let list: Vec<Value> = all
        .iter()
        .skip((page - 1) * size)
        .take(size)
        .map(|w| work_session_json(w))
        .collect();
    let mut links = json!({"self": format!("/v1/routing/users/{user}/work-sessions?page={page}&pageSize={size}")});
    if page * size < all.len() {
        links["next"] = json!(format!(
            "/v1/routing/users/{user}/work-sessions?page={}&pageSize={size}",
            page + 1
        ));
    }
    Json(json!({"data": list, "links": links})).into_response()
}

/// `GET /v1/routing/work-sessions/{id}`.
async fn work_session(State(k): State<Kustomer>, Path(id): Path<String>) -> Response {
    match k.data().work_sessions.iter().find(|w| w.id == id) {
        Some(w) => ok(work_session_json(w)),
        None => not_found("work session"),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct WorkSessionIn {
    status: Option<String>,
}

/// `PUT /v1/routing/work-sessions/{id}`. The path is documented, the body is not: this accepts
/// `{"status": "<status id>"}` and nothing else, **the same assumption** as the gateway's
/// `work_session_status_body`: a stand-in for an unknown contract, not Kustomer's. An ended
/// session is read-only (documented).
async fn set_work_session(
    State(k): State<Kustomer>,
    Path(id): Path<String>,
    body: Bytes,
) -> Response {
    let input: WorkSessionIn = match decode(&body) {
        Ok(w) => w,
        Err(r) => return r,
    };
    let Some(status) = input.status.filter(|s| status_type(s).is_some()) else {
        return bad_request(
            "status must be the id of a routing status",
            "/data/attributes/status",
        );
    };
    let mut data = k.data();
    let Some(w) = data.work_sessions.iter_mut().find(|w| w.id == id) else {
        return not_found("work session");
    };
    if !w.active {
        return bad_request(
            "the work session has ended and is read-only",
            "/data/attributes/status",
        );
    }
    set_status(w, &status, now_ms());
    ok(work_session_json(w))
}

// ---- Test endpoints --------------------------------------------------------------------------

/// `GET /_sim/kustomer/writes`: every write the org received, in order.
async fn writes(State(k): State<Kustomer>) -> Json<Vec<Write>> {
    Json(k.data().writes.clone())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FaultsIn {
    #[serde(default)]
    rate_limited: u32,
    #[serde(default)]
    server_errors: u32,
    #[serde(default)]
    client_errors: u32,
    #[serde(default)]
    slow: u32,
    #[serde(default)]
    latency_ms: u64,
    #[serde(default)]
    unauthorized: u32,
    #[serde(default)]
    method: Option<String>,
    #[serde(default)]
    path_ends_with: Option<String>,
}

/// `POST /_sim/kustomer/faults {"rate_limited": n, "server_errors": m, "client_errors": c,
/// "unauthorized": u, "slow": s, "latency_ms": l}`: the next u requests answer 401 (as to a
/// wrong API key), then the next m answer 500, then the next c answer 400, then the next n
/// answer 429; the next s requests are answered only after l ms (at most 30,000). With
/// `"method"` and/or `"path_ends_with"`, only the requests that match count (e.g. `"POST"`,
/// `"/messages"`).
async fn set_faults(State(k): State<Kustomer>, body: Bytes) -> Response {
    let input: FaultsIn = match decode(&body) {
        Ok(f) => f,
        Err(r) => return r,
    };
    let mut limits = lock(&k.limits);
    if input.latency_ms > 30_000 {
        return bad_request("latency_ms must be at most 30000", "/latency_ms");
    }
    limits.rate_limited_left = input.rate_limited;
    limits.server_errors_left = input.server_errors;
    limits.client_errors_left = input.client_errors;
    limits.slow_left = input.slow;
    limits.latency_ms = input.latency_ms;
    limits.unauthorized_left = input.unauthorized;
    limits.fault_method = input.method;
    limits.fault_path_ends_with = input.path_ends_with;
    Json(limits.clone()).into_response()
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ApiKeyIn {
    api_key: String,
}

/// `POST /_sim/kustomer/api-key {"api_key": "..."}`: the org now accepts only this key (an
/// admin rotated or revoked the old one in Settings > Security > API Keys); requests with
/// another get a 401. Posting the first key again makes it work again. A reset restores it.
async fn set_api_key(State(k): State<Kustomer>, body: Bytes) -> Response {
    let input: ApiKeyIn = match decode(&body) {
        Ok(i) => i,
        Err(r) => return r,
    };
    if input.api_key.trim().is_empty() {
        return bad_request("api_key must not be empty", "/api_key");
    }
    *lock(&k.api_key) = input.api_key.trim().to_owned();
    StatusCode::NO_CONTENT.into_response()
}

/// `DELETE /_sim/kustomer/customers/{id}`: the customer is gone, as when someone merges or
/// deletes it in Kustomer (its conversations stay, as orphans; the tests only need the customer
/// gone). 204, or 404 when there is none.
async fn remove_customer(State(k): State<Kustomer>, Path(id): Path<String>) -> Response {
    let mut data = k.data();
    let before = data.customers.len();
    data.customers.retain(|c| c.id != id);
    if data.customers.len() == before {
        return not_found("customer");
    }
    StatusCode::NO_CONTENT.into_response()
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LimitsIn {
    per_window: u32,
    #[serde(default)]
    window_ms: Option<i64>,
}

/// `POST /_sim/kustomer/limits {"per_window": 1000, "window_ms": 60000}`.
async fn set_limits(State(k): State<Kustomer>, body: Bytes) -> Response {
    let input: LimitsIn = match decode(&body) {
        Ok(l) => l,
        Err(r) => return r,
    };
    let window = input.window_ms.unwrap_or(DEFAULT_WINDOW_MS);
    if input.per_window == 0 || !(100..=3_600_000).contains(&window) {
        return bad_request(
            "per_window must be positive, window_ms 100 to 3600000",
            "/per_window",
        );
    }
    let mut limits = lock(&k.limits);
    limits.per_window = input.per_window;
    limits.window_ms = window;
    limits.window_start_ms = 0;
    limits.used = 0;
    Json(limits.clone()).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn multipart_bodies_are_split_into_their_parts() {
        let body = b"--XyZ\r\nContent-Disposition: form-data; name=\"policy\"\r\n\r\np-1\r\n--XyZ\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.txt\"\r\nContent-Type: text/plain\r\n\r\nhello\r\n--XyZ--\r\n";
        let parts = multipart_parts("multipart/form-data; boundary=XyZ", body);
        assert_eq!(
            parts,
            Some(vec![
                ("policy".into(), b"p-1".to_vec()),
                ("file".into(), b"hello".to_vec())
            ])
        );
        assert_eq!(
            multipart_parts("multipart/form-data", body),
            None,
            "no boundary"
        );
        assert_eq!(
            multipart_parts("multipart/form-data; boundary=XyZ", b"--XyZ\r\nbroken"),
            None
        );
    }

    #[test]
    fn custom_attributes_must_exist_and_fit_their_suffix() {
        let mut data = KustomerData::default();
        let check = |data: &KustomerData, v: Value| {
            check_custom(data, "conversation", v.as_object().unwrap_or(&Map::new()))
                .map_err(|r| r.status())
        };
        assert_eq!(check(&data, json!({"ccaiCallIdStr": "1001"})), Ok(()));
        assert_eq!(
            check(&data, json!({"ccaiCallIdStr": 1001})),
            Err(StatusCode::BAD_REQUEST)
        );
        assert_eq!(
            check(&data, json!({"orderIdStr": "A"})),
            Err(StatusCode::BAD_REQUEST),
            "not defined"
        );
        assert_eq!(
            check(&data, json!({"order": "A"})),
            Err(StatusCode::BAD_REQUEST),
            "no suffix"
        );
        data.klasses
            .entry("conversation".into())
            .or_default()
            .insert(
                "scoreNum".into(),
                Property {
                    display_name: "Score".into(),
                    created_at_ms: 0,
                },
            );
        assert_eq!(check(&data, json!({"scoreNum": 3})), Ok(()));
        assert_eq!(
            check(&data, json!({"scoreNum": "3"})),
            Err(StatusCode::BAD_REQUEST)
        );
    }
}
