//! Protocol v1 between the host page (the Kustomer agent desktop) and the adapter, carried by
//! `window.postMessage` (see `docs/host-protocol.md`).
//!
//! Every message is a JSON object `{"protocol": "ccai-adapter", "version": 1, "type": ...,
//! "id"?: ..., "reply_to"?: ..., "payload": {...}}`. Decoding is layered so every rejection says
//! why: size, JSON, namespace (other libraries' messages are not ours), version, type, payload.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::json_fields::{list, object_with, one_of, string, uint16, FieldError, Fields};

/// The namespace that marks our messages among everything else posted to a window.
pub const PROTOCOL: &str = "ccai-adapter";
pub const VERSION: u32 = 1;
/// Largest message read, as serialised JSON.
pub const MAX_MESSAGE_BYTES: usize = 64 * 1024;
/// Longest correlation id.
pub const MAX_ID_CHARS: usize = 64;

/// A decoded message with its correlation ids.
#[derive(Clone, Debug, PartialEq)]
pub struct Envelope<M> {
    /// Set by the sender when it expects a reply.
    pub id: Option<String>,
    /// The `id` of the request this message answers.
    pub reply_to: Option<String>,
    pub message: M,
}

/// A Kustomer user (the agent), as the host knows it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct KustomerUser {
    pub id: String,
    pub email: String,
    #[serde(default)]
    pub name: Option<String>,
}

/// A phone number of a customer, as written in the CRM.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CustomerPhone {
    pub phone: String,
    /// `mobile`, `work`, `home`, ...
    #[serde(default, rename = "type")]
    pub kind: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Customer {
    pub id: String,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub phones: Vec<CustomerPhone>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Conversation {
    pub id: String,
    #[serde(default)]
    pub name: Option<String>,
}

/// What the agent is looking at in the host.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Context {
    #[serde(default)]
    pub customer: Option<Customer>,
    #[serde(default)]
    pub conversation: Option<Conversation>,
}

/// The handshake: who the agent is, what they look at, which language the host speaks.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Init {
    pub user: KustomerUser,
    #[serde(default)]
    pub context: Context,
    /// BCP 47 tag of the host's language.
    #[serde(default)]
    pub lang: Option<String>,
    #[serde(default)]
    pub roles: Vec<String>,
}

/// A customer named by click-to-call.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CustomerRef {
    pub id: String,
    #[serde(default)]
    pub name: Option<String>,
}

/// The phone icon next to a number was clicked: fill the dial pad (never dial by itself).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClickToCall {
    pub phone: String,
    #[serde(default)]
    pub customer: Option<CustomerRef>,
    #[serde(default)]
    pub conversation_id: Option<String>,
}

/// Kustomer's status types.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum KustomerStatusType {
    Available,
    Busy,
    Unavailable,
    Offline,
}

/// The agent's Kustomer user status changed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserStatusChanged {
    pub status_id: String,
    pub name: String,
    pub status_type: KustomerStatusType,
    /// When it changed, ISO 8601 (UTC).
    pub at: String,
}

/// The host's answer to an [`AdapterToHost::ApiRequest`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ApiResponse {
    pub status: u16,
    #[serde(default)]
    pub body: Value,
}

/// Messages the host sends to the adapter.
#[derive(Clone, Debug, PartialEq)]
pub enum HostToAdapter {
    Init(Init),
    ContextChanged(Context),
    ClickToCall(ClickToCall),
    UserStatusChanged(UserStatusChanged),
    ApiResponse(ApiResponse),
}

impl HostToAdapter {
    /// Every type name, as on the wire.
    pub const TYPES: [&'static str; 5] = [
        "init",
        "context_changed",
        "click_to_call",
        "user_status_changed",
        "api_response",
    ];

    pub fn type_name(&self) -> &'static str {
        match self {
            HostToAdapter::Init(_) => "init",
            HostToAdapter::ContextChanged(_) => "context_changed",
            HostToAdapter::ClickToCall(_) => "click_to_call",
            HostToAdapter::UserStatusChanged(_) => "user_status_changed",
            HostToAdapter::ApiResponse(_) => "api_response",
        }
    }
}

/// How urgent a notice is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum NoticeLevel {
    Info,
    Warning,
    Error,
}

/// Messages the adapter sends to the host.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", content = "payload", rename_all = "snake_case")]
pub enum AdapterToHost {
    /// The adapter is up and speaks this version (sent at start-up; the host answers `init`).
    Ready { version: u32 },
    /// Open or focus the adapter (an incoming call).
    Open {},
    /// Screen pop: open this conversation.
    OpenConversation {
        customer_id: String,
        conversation_id: String,
    },
    /// The adapter's wanted height in CSS pixels.
    Resize { height: u32 },
    /// Call the Kustomer API as the agent; answered by `api_response` with `reply_to`.
    ApiRequest {
        method: String,
        path: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        body: Option<Value>,
    },
    /// Something the agent should see in the host.
    Notice { level: NoticeLevel, text: String },
    /// A host message was refused (sent in reply to it when it had an `id`).
    Rejected { code: String, reason: String },
}

/// Why a message was refused.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum DecodeError {
    /// Over [`MAX_MESSAGE_BYTES`].
    TooLarge {
        bytes: usize,
    },
    /// Not JSON, or not an object.
    NotJson(String),
    /// Not in our namespace: someone else's message in the same window. Ignored quietly.
    NotOurs,
    /// The version, as it was written.
    UnsupportedVersion(String),
    UnknownType(String),
    /// An envelope field (`id`, `reply_to`, `type`) is wrong.
    BadEnvelope(String),
    /// The payload does not have the shape of its type.
    BadPayload {
        kind: &'static str,
        reason: String,
    },
}

impl DecodeError {
    /// A stable code, for diagnostics and `rejected` replies.
    pub fn code(&self) -> &'static str {
        match self {
            DecodeError::TooLarge { .. } => "too_large",
            DecodeError::NotJson(_) => "not_json",
            DecodeError::NotOurs => "not_ours",
            DecodeError::UnsupportedVersion(_) => "unsupported_version",
            DecodeError::UnknownType(_) => "unknown_type",
            DecodeError::BadEnvelope(_) => "bad_envelope",
            DecodeError::BadPayload { .. } => "bad_payload",
        }
    }
}

impl std::fmt::Display for DecodeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DecodeError::TooLarge { bytes } => {
                write!(
                    f,
                    "message of {bytes} bytes is over the {MAX_MESSAGE_BYTES}-byte limit"
                )
            }
            DecodeError::NotJson(reason) => write!(f, "not a JSON object: {reason}"),
            DecodeError::NotOurs => write!(f, "not a {PROTOCOL} message"),
            DecodeError::UnsupportedVersion(v) => write!(
                f,
                "version {v} is not supported (this adapter speaks {VERSION})"
            ),
            DecodeError::UnknownType(t) => write!(f, "unknown message type {t:?}"),
            DecodeError::BadEnvelope(reason) => write!(f, "bad envelope: {reason}"),
            DecodeError::BadPayload { kind, reason } => write!(f, "bad {kind} payload: {reason}"),
        }
    }
}

impl std::error::Error for DecodeError {}

/// The envelope's fields, each judged on its own. The message is parsed once, into a
/// `serde_json::Value`, and its payload read field by field ([`crate::json_fields`]): the
/// derived decoders of the payload types would each be their own code in the widget. (A key
/// given twice counts once, its last value.)
struct RawEnvelope<'a> {
    fields: Fields<'a>,
}

/// A correlation id: absent, or a short printable string.
fn correlation_id(value: Option<&Value>, field: &str) -> Result<Option<String>, DecodeError> {
    match value {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(id))
            if !id.is_empty()
                && id.chars().count() <= MAX_ID_CHARS
                && !id.chars().any(char::is_control) =>
        {
            Ok(Some(id.clone()))
        }
        Some(_) => Err(DecodeError::BadEnvelope(format!(
            "{field} must be a string of 1 to {MAX_ID_CHARS} printable characters"
        ))),
    }
}

fn parse(raw: &str) -> Result<Value, DecodeError> {
    if raw.len() > MAX_MESSAGE_BYTES {
        return Err(DecodeError::TooLarge { bytes: raw.len() });
    }
    if !raw.trim_start().starts_with('{') {
        return Err(DecodeError::NotJson(
            "a JSON value that is not an object".into(),
        ));
    }
    crate::json_text::parse(raw).map_err(DecodeError::NotJson)
}

fn envelope(value: &Value) -> Result<RawEnvelope<'_>, DecodeError> {
    let fields = Fields::of(value, "").map_err(DecodeError::NotJson)?;
    match fields.get("protocol") {
        Some(Value::String(protocol)) if protocol == PROTOCOL => Ok(RawEnvelope { fields }),
        _ => Err(DecodeError::NotOurs),
    }
}

/// Reads a payload of `kind` with `read` (a missing payload reads as `{}`).
fn payload<T>(
    kind: &'static str,
    value: Option<&Value>,
    read: impl FnOnce(Fields<'_>) -> Result<T, FieldError>,
) -> Result<T, DecodeError> {
    let empty = Value::Object(Default::default());
    let value = match value {
        None => &empty,
        Some(value) => value,
    };
    Fields::of(value, "")
        .and_then(read)
        .map_err(|reason| DecodeError::BadPayload { kind, reason })
}

fn kustomer_user(f: Fields<'_>) -> Result<KustomerUser, FieldError> {
    Ok(KustomerUser {
        id: f.req("id", string)?,
        email: f.req("email", string)?,
        name: f.opt("name", string)?,
    })
}

fn customer(f: Fields<'_>) -> Result<Customer, FieldError> {
    Ok(Customer {
        id: f.req("id", string)?,
        name: f.opt("name", string)?,
        phones: f.or_default(
            "phones",
            list(object_with("phones", |p| {
                Ok(CustomerPhone {
                    phone: p.req("phone", string)?,
                    kind: p.opt("type", string)?,
                })
            })),
        )?,
    })
}

fn context(f: Fields<'_>) -> Result<Context, FieldError> {
    Ok(Context {
        customer: f.opt("customer", object_with("customer", customer))?,
        conversation: f.opt(
            "conversation",
            object_with("conversation", |c| {
                Ok(Conversation {
                    id: c.req("id", string)?,
                    name: c.opt("name", string)?,
                })
            }),
        )?,
    })
}

fn init(f: Fields<'_>) -> Result<Init, FieldError> {
    Ok(Init {
        user: f.req("user", object_with("user", kustomer_user))?,
        context: f.or_default("context", object_with("context", context))?,
        lang: f.opt("lang", string)?,
        roles: f.or_default("roles", list(string))?,
    })
}

fn click_to_call(f: Fields<'_>) -> Result<ClickToCall, FieldError> {
    Ok(ClickToCall {
        phone: f.req("phone", string)?,
        customer: f.opt(
            "customer",
            object_with("customer", |c| {
                Ok(CustomerRef {
                    id: c.req("id", string)?,
                    name: c.opt("name", string)?,
                })
            }),
        )?,
        conversation_id: f.opt("conversation_id", string)?,
    })
}

fn user_status_changed(f: Fields<'_>) -> Result<UserStatusChanged, FieldError> {
    const TYPES: [KustomerStatusType; 4] = [
        KustomerStatusType::Available,
        KustomerStatusType::Busy,
        KustomerStatusType::Unavailable,
        KustomerStatusType::Offline,
    ];
    Ok(UserStatusChanged {
        status_id: f.req("status_id", string)?,
        name: f.req("name", string)?,
        status_type: TYPES[f.req(
            "status_type",
            one_of(&["available", "busy", "unavailable", "offline"]),
        )?],
        at: f.req("at", string)?,
    })
}

fn api_response(f: Fields<'_>) -> Result<ApiResponse, FieldError> {
    Ok(ApiResponse {
        status: f.req("status", uint16)?,
        body: f.get("body").cloned().unwrap_or_default(),
    })
}

/// Decodes one message from the host, serialised as JSON.
pub fn decode(raw: &str) -> Result<Envelope<HostToAdapter>, DecodeError> {
    let value = parse(raw)?;
    let envelope = envelope(&value)?;
    let f = envelope.fields;
    match f.get("version") {
        Some(v) if v.is_u64() && v.as_u64() == Some(u64::from(VERSION)) => {}
        Some(v) => {
            let shown: String = crate::json_text::to_text(v).chars().take(20).collect();
            return Err(DecodeError::UnsupportedVersion(shown));
        }
        None => return Err(DecodeError::UnsupportedVersion("none".into())),
    }
    let id = correlation_id(f.get("id"), "id")?;
    let reply_to = correlation_id(f.get("reply_to"), "reply_to")?;
    let kind = f
        .get("type")
        .and_then(Value::as_str)
        .ok_or_else(|| DecodeError::BadEnvelope("type must be a string".into()))?;
    // A missing payload reads as `{}`; one given as `null` is refused.
    let body = f.raw("payload");
    let message = match kind {
        "init" => HostToAdapter::Init(payload("init", body, init)?),
        "context_changed" => {
            HostToAdapter::ContextChanged(payload("context_changed", body, context)?)
        }
        "click_to_call" => {
            HostToAdapter::ClickToCall(payload("click_to_call", body, click_to_call)?)
        }
        "user_status_changed" => HostToAdapter::UserStatusChanged(payload(
            "user_status_changed",
            body,
            user_status_changed,
        )?),
        "api_response" => {
            if reply_to.is_none() {
                return Err(DecodeError::BadEnvelope(
                    "api_response needs reply_to".into(),
                ));
            }
            HostToAdapter::ApiResponse(payload("api_response", body, api_response)?)
        }
        _ => {
            let shown: String = kind.chars().take(40).collect();
            return Err(DecodeError::UnknownType(shown));
        }
    };
    Ok(Envelope {
        id,
        reply_to,
        message,
    })
}

/// The `id` of a refused message, to answer it with `rejected`; `None` when it had none, or when
/// it is too large, not JSON, or not ours (those get no answer).
pub fn refused_id(raw: &str) -> Option<String> {
    let value = parse(raw).ok()?;
    correlation_id(envelope(&value).ok()?.fields.get("id"), "id")
        .ok()
        .flatten()
}

/// Serialises a message to the host: the envelope, `type` and `payload`, built as one JSON value
/// (the derived serialiser of [`AdapterToHost`] would be code of its own in the widget; the
/// tests hold this to it).
pub fn encode(id: Option<&str>, reply_to: Option<&str>, message: &AdapterToHost) -> String {
    let text = |s: &str| Value::String(s.to_owned());
    let mut payload = serde_json::Map::new();
    let mut put = |key: &str, value: Value| {
        payload.insert(key.to_owned(), value);
    };
    let kind = match message {
        AdapterToHost::Ready { version } => {
            put("version", Value::from(*version));
            "ready"
        }
        AdapterToHost::Open {} => "open",
        AdapterToHost::OpenConversation {
            customer_id,
            conversation_id,
        } => {
            put("customer_id", text(customer_id));
            put("conversation_id", text(conversation_id));
            "open_conversation"
        }
        AdapterToHost::Resize { height } => {
            put("height", Value::from(*height));
            "resize"
        }
        AdapterToHost::ApiRequest { method, path, body } => {
            put("method", text(method));
            put("path", text(path));
            if let Some(body) = body {
                put("body", body.clone());
            }
            "api_request"
        }
        AdapterToHost::Notice { level, text: words } => {
            let level = match level {
                NoticeLevel::Info => "info",
                NoticeLevel::Warning => "warning",
                NoticeLevel::Error => "error",
            };
            put("level", text(level));
            put("text", text(words));
            "notice"
        }
        AdapterToHost::Rejected { code, reason } => {
            put("code", text(code));
            put("reason", text(reason));
            "rejected"
        }
    };
    let mut envelope = serde_json::Map::new();
    envelope.insert("protocol".into(), text(PROTOCOL));
    envelope.insert("version".into(), Value::from(VERSION));
    for (field, value) in [("id", id), ("reply_to", reply_to)] {
        if let Some(value) = value {
            envelope.insert(field.into(), text(value));
        }
    }
    envelope.insert("type".into(), text(kind));
    envelope.insert("payload".into(), Value::Object(payload));
    crate::json_text::to_text(&Value::Object(envelope))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn wire(kind: &str, payload: Value) -> String {
        json!({"protocol": PROTOCOL, "version": 1, "type": kind, "id": "h-1", "payload": payload})
            .to_string()
    }

    #[test]
    fn decodes_every_host_message() {
        let cases = [
            (
                wire(
                    "init",
                    json!({"user": {"id": "u1", "email": "ada@example.com"}, "lang": "fr-FR"}),
                ),
                HostToAdapter::Init(Init {
                    user: KustomerUser {
                        id: "u1".into(),
                        email: "ada@example.com".into(),
                        name: None,
                    },
                    context: Context::default(),
                    lang: Some("fr-FR".into()),
                    roles: vec![],
                }),
            ),
            (
                wire(
                    "context_changed",
                    json!({"customer": {"id": "c1", "name": "Ada", "phones": [{"phone": "+33 6 12 34 56 78", "type": "mobile"}]}}),
                ),
                HostToAdapter::ContextChanged(Context {
                    customer: Some(Customer {
                        id: "c1".into(),
                        name: Some("Ada".into()),
                        phones: vec![CustomerPhone {
                            phone: "+33 6 12 34 56 78".into(),
                            kind: Some("mobile".into()),
                        }],
                    }),
                    conversation: None,
                }),
            ),
            (
                wire(
                    "click_to_call",
                    json!({"phone": "06 12 34 56 78", "customer": {"id": "c1"}, "conversation_id": "k9", "extra": true}),
                ),
                HostToAdapter::ClickToCall(ClickToCall {
                    phone: "06 12 34 56 78".into(),
                    customer: Some(CustomerRef {
                        id: "c1".into(),
                        name: None,
                    }),
                    conversation_id: Some("k9".into()),
                }),
            ),
            (
                wire(
                    "user_status_changed",
                    json!({"status_id": "s1", "name": "Lunch", "status_type": "unavailable", "at": "2026-11-21T10:00:00.000Z"}),
                ),
                HostToAdapter::UserStatusChanged(UserStatusChanged {
                    status_id: "s1".into(),
                    name: "Lunch".into(),
                    status_type: KustomerStatusType::Unavailable,
                    at: "2026-11-21T10:00:00.000Z".into(),
                }),
            ),
        ];
        for (raw, want) in cases {
            let envelope = decode(&raw).unwrap_or_else(|e| panic!("{raw}: {e}"));
            assert_eq!(envelope.id.as_deref(), Some("h-1"));
            assert_eq!(envelope.message, want);
        }
        let response = json!({"protocol": PROTOCOL, "version": 1, "type": "api_response", "reply_to": "a-7", "payload": {"status": 200, "body": {"data": []}}});
        let envelope = decode(&response.to_string()).unwrap();
        assert_eq!(envelope.reply_to.as_deref(), Some("a-7"));
        assert!(matches!(
            envelope.message,
            HostToAdapter::ApiResponse(ApiResponse { status: 200, .. })
        ));
    }

    #[test]
    fn refusals_table() {
        let big = format!(
            r#"{{"protocol":"ccai-adapter","version":1,"type":"init","pad":"{}"}}"#,
            "x".repeat(MAX_MESSAGE_BYTES)
        );
        let long_id = "i".repeat(MAX_ID_CHARS + 1);
        let cases: Vec<(String, &str)> = vec![
            (big, "too_large"),
            ("not json".into(), "not_json"),
            ("[1,2]".into(), "not_json"),
            ("\"ccai-adapter\"".into(), "not_json"),
            (json!({"type": "click_to_call"}).to_string(), "not_ours"),
            (json!({"protocol": "other-lib", "version": 1}).to_string(), "not_ours"),
            (json!({"protocol": PROTOCOL, "version": 2, "type": "init"}).to_string(), "unsupported_version"),
            (json!({"protocol": PROTOCOL, "version": "1", "type": "init"}).to_string(), "unsupported_version"),
            (json!({"protocol": PROTOCOL, "type": "init"}).to_string(), "unsupported_version"),
            (json!({"protocol": PROTOCOL, "version": 1, "type": "dial_now"}).to_string(), "unknown_type"),
            (json!({"protocol": PROTOCOL, "version": 1}).to_string(), "bad_envelope"),
            (json!({"protocol": PROTOCOL, "version": 1, "type": 3}).to_string(), "bad_envelope"),
            (json!({"protocol": PROTOCOL, "version": 1, "type": "init", "id": 5}).to_string(), "bad_envelope"),
            (json!({"protocol": PROTOCOL, "version": 1, "type": "init", "id": ""}).to_string(), "bad_envelope"),
            (json!({"protocol": PROTOCOL, "version": 1, "type": "init", "id": long_id}).to_string(), "bad_envelope"),
            (json!({"protocol": PROTOCOL, "version": 1, "type": "init", "id": "a\nb"}).to_string(), "bad_envelope"),
            (json!({"protocol": PROTOCOL, "version": 1, "type": "api_response", "payload": {"status": 200}}).to_string(), "bad_envelope"),
            (wire("init", json!({})), "bad_payload"),
            (wire("init", json!({"user": {"id": 1, "email": "a@b"}})), "bad_payload"),
            (wire("click_to_call", json!({"phone": 612345678})), "bad_payload"),
            (wire("click_to_call", json!(null)), "bad_payload"),
            (wire("user_status_changed", json!({"status_id": "s", "name": "n", "status_type": "napping", "at": "t"})), "bad_payload"),
        ];
        for (raw, code) in cases {
            let shown: String = raw.chars().take(80).collect();
            match decode(&raw) {
                Ok(m) => panic!("{shown} decoded as {m:?}"),
                Err(e) => assert_eq!(e.code(), code, "{shown}: {e}"),
            }
        }
    }

    #[test]
    fn refused_messages_are_answered_only_when_ours_and_identified() {
        let unknown = json!({"protocol": PROTOCOL, "version": 1, "type": "dial_now", "id": "h-9"})
            .to_string();
        assert_eq!(refused_id(&unknown).as_deref(), Some("h-9"));
        let foreign = json!({"protocol": "other", "id": "x"}).to_string();
        assert_eq!(refused_id(&foreign), None);
        assert_eq!(refused_id("{"), None);
        let bad_id =
            json!({"protocol": PROTOCOL, "version": 1, "type": "init", "id": 7}).to_string();
        assert_eq!(refused_id(&bad_id), None);
    }

    #[test]
    fn encodes_as_the_derived_serialiser_does() {
        let messages = [
            AdapterToHost::Ready { version: VERSION },
            AdapterToHost::Open {},
            AdapterToHost::OpenConversation {
                customer_id: "c1".into(),
                conversation_id: "k1".into(),
            },
            AdapterToHost::Resize { height: 48 },
            AdapterToHost::ApiRequest {
                method: "PUT".into(),
                path: "/v1/x".into(),
                body: Some(json!({"a": [1, "b"]})),
            },
            AdapterToHost::ApiRequest {
                method: "GET".into(),
                path: "/v1/y".into(),
                body: None,
            },
            AdapterToHost::Notice {
                level: NoticeLevel::Warning,
                text: "Careful \"now\"".into(),
            },
            AdapterToHost::Rejected {
                code: "bad_payload".into(),
                reason: "no".into(),
            },
        ];
        for message in messages {
            for (id, reply_to) in [(None, None), (Some("a-1"), Some("h-\n2"))] {
                let mut want = serde_json::to_value(&message).unwrap();
                want["protocol"] = json!(PROTOCOL);
                want["version"] = json!(VERSION);
                if let Some(id) = id {
                    want["id"] = json!(id);
                }
                if let Some(reply_to) = reply_to {
                    want["reply_to"] = json!(reply_to);
                }
                let got: Value = serde_json::from_str(&encode(id, reply_to, &message)).unwrap();
                assert_eq!(got, want, "{message:?}");
            }
        }
    }

    #[test]
    fn encodes_with_envelope_and_correlation() {
        let raw = encode(
            Some("a-1"),
            Some("h-1"),
            &AdapterToHost::Ready { version: VERSION },
        );
        let value: Value = serde_json::from_str(&raw).unwrap();
        assert_eq!(
            value,
            json!({"protocol": PROTOCOL, "version": 1, "id": "a-1", "reply_to": "h-1", "type": "ready", "payload": {"version": 1}})
        );
        let raw = encode(None, None, &AdapterToHost::Open {});
        assert_eq!(serde_json::from_str::<Value>(&raw).unwrap()["type"], "open");
        let raw = encode(
            None,
            None,
            &AdapterToHost::ApiRequest {
                method: "GET".into(),
                path: "/v1/routing/statuses".into(),
                body: None,
            },
        );
        assert!(!raw.contains("body"));
    }

    #[test]
    fn arbitrary_and_mutated_input_never_panics_and_is_classified() {
        let seeds: Vec<String> = vec![
            wire(
                "init",
                json!({"user": {"id": "u1", "email": "ada@example.com"}}),
            ),
            wire(
                "click_to_call",
                json!({"phone": "06 12 34 56 78", "customer": {"id": "c1"}}),
            ),
            wire(
                "user_status_changed",
                json!({"status_id": "s1", "name": "Lunch", "status_type": "busy", "at": "t"}),
            ),
            wire(
                "context_changed",
                json!({"customer": {"id": "c1", "name": "Ada", "phones": [{"phone": "+1 415", "type": "work"}]},
                    "conversation": {"id": "k1", "name": null}}),
            ),
            wire(
                "init",
                json!({"user": {"id": "u1", "email": "a@b", "name": "Ada"}, "lang": "fr",
                    "roles": ["admin"], "context": {"conversation": {"id": "k2"}}}),
            ),
            json!({"protocol": PROTOCOL, "version": 1, "type": "api_response", "reply_to": "a-1",
                "payload": {"status": 200, "body": {"data": [1, 2]}}})
            .to_string(),
        ];
        let mut accepted = 0;
        let noise = "{}[]\":,0123456789abcdefnulltrue \\u00e9\u{0}\u{ffff}";
        for raw in crate::testing::mutations(&seeds, 20_000, 4, noise) {
            match decode(&raw) {
                Ok(envelope) => {
                    accepted += 1;
                    assert!(HostToAdapter::TYPES.contains(&envelope.message.type_name()));
                    assert_eq!(
                        serde_reference(&raw),
                        Some(Ok(envelope.message)),
                        "{raw}: read as serde reads it"
                    );
                }
                Err(error) => {
                    assert!(!error.code().is_empty() && !error.to_string().is_empty());
                    if let DecodeError::BadPayload { .. } = error {
                        assert_eq!(
                            serde_reference(&raw).map(|r| r.is_err()),
                            Some(true),
                            "{raw}: refused as serde refuses it ({error})"
                        );
                    }
                }
            }
        }
        assert!(accepted > 0, "some mutations keep a valid message");
    }

    /// The payload as the types' derived decoders read it: the reference the field-by-field
    /// decoder is held to.
    fn serde_reference(raw: &str) -> Option<Result<HostToAdapter, String>> {
        let value: Value = serde_json::from_str(raw).ok()?;
        let payload = value.get("payload").cloned().unwrap_or(json!({}));
        let e = |e: serde_json::Error| e.to_string();
        Some(match value.get("type")?.as_str()? {
            "init" => serde_json::from_value(payload)
                .map(HostToAdapter::Init)
                .map_err(e),
            "context_changed" => serde_json::from_value(payload)
                .map(HostToAdapter::ContextChanged)
                .map_err(e),
            "click_to_call" => serde_json::from_value(payload)
                .map(HostToAdapter::ClickToCall)
                .map_err(e),
            "user_status_changed" => serde_json::from_value(payload)
                .map(HostToAdapter::UserStatusChanged)
                .map_err(e),
            "api_response" => serde_json::from_value(payload)
                .map(HostToAdapter::ApiResponse)
                .map_err(e),
            _ => return None,
        })
    }
}
