//! The gateway's own session events: what the agent's stream and the CRM rules read. They are
//! **not** a platform shape. The gateway builds them from the platform's documented External
//! Session Events and Manager API resources ([`crate::ccai_events`], [`crate::manager`]); the
//! same shape, as JSON, is the body of the simulator's **extension**
//! (`POST /webhooks/ccai/extension`), which carries what the public APIs do not document
//! (`docs/upstream-contracts.md`). Decoded and checked here, so a hostile extension body is
//! refused with a reason:
//!
//! ```json
//! {"event_id": "sim-1", "event_type": "call.connected", "occurred_at": "2026-11-21T16:00:00.000Z",
//!  "session": {"type": "call", "id": 1001, "status": "connected", "direction": "inbound",
//!              "end_user": {"identifier": "+14155552671"}, "out_ticket_id": "conv-1",
//!              "connected_at": "2026-11-21T16:00:00.000Z", "ends_at": null, "muted": false,
//!              "end_reason": null},
//!  "agent": {"id": 102, "email": "grace.hopper@example.com", "status": {"id": -7, "name": "In-call"},
//!            "next_status": null}}
//! ```
//!
//! Optional detail objects: `voicemail {recording_url}`, `csat {rating 1..5, comment}`,
//! `smart_action {name, status, result, error, files}`, `transfer {target, agent_email}`,
//! `dtmf {digits}`, `transcript {text}`. Unknown keys are ignored; unknown event types and
//! statuses are refused. `session.id` is the platform's id (a number or an id of letters and
//! digits); the gateway puts its own id in [`Session::id`] after reading it.
//!
//! What the CRM sync needs beyond the call (where the session came from, the menu, the language,
//! durations, the recording, SDK custom data, which call a call-back follows) is optional on
//! `session` and decoded into [`CrmFacts`]; the names follow the Manager API's call model
//! (`selected_menu`, `menu_path`, `lang`, `queue_duration`, `call_duration`, `hold_duration`,
//! `recording_url`, `custom_data`).

use serde::Deserialize;

use crate::{
    agent_events::{AgentEvent, CallState, CallView, Channel, Direction, StatusView},
    iso_time::parse_utc_ms,
};

/// Longest `event_id` kept (it is the deduplication key).
pub const MAX_EVENT_ID_CHARS: usize = 128;
/// Longest name, reason, identifier or ticket id.
pub const MAX_TEXT_CHARS: usize = 256;
/// Longest URL (a voicemail recording).
pub const MAX_URL_CHARS: usize = 2048;

/// Why a webhook was refused. The text says which field and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InvalidWebhook(pub String);

impl std::fmt::Display for InvalidWebhook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for InvalidWebhook {}

fn invalid(reason: impl Into<String>) -> InvalidWebhook {
    InvalidWebhook(reason.into())
}

/// What happened, without the channel (`call.` or `chat.` in the wire name).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EventKind {
    /// An outbound call was placed for the agent.
    Assigned,
    /// An inbound call or chat is offered to the agent (ringing).
    Offered,
    Connected,
    Held,
    Resumed,
    Muted,
    Unmuted,
    Transferred,
    Dtmf,
    /// The conversation ended; wrap-up follows.
    Ended,
    WrapUpEnded,
    /// The agent did not take the offer.
    Missed,
    /// The customer hung up before being served.
    Abandoned,
    Voicemail,
    SmartAction,
    Csat,
    /// The call's recording can be fetched (`session.recording_url`).
    RecordingReady,
    /// The chat's transcript is ready (`transcript {text}`).
    TranscriptReady,
    /// An agent read the voicemail.
    VoicemailRead,
    /// An agent dismissed the voicemail.
    VoicemailDismissed,
    /// An agent called the voicemail's caller back.
    VoicemailCalledBack,
}

impl EventKind {
    pub const ALL: [EventKind; 21] = [
        EventKind::Assigned,
        EventKind::Offered,
        EventKind::Connected,
        EventKind::Held,
        EventKind::Resumed,
        EventKind::Muted,
        EventKind::Unmuted,
        EventKind::Transferred,
        EventKind::Dtmf,
        EventKind::Ended,
        EventKind::WrapUpEnded,
        EventKind::Missed,
        EventKind::Abandoned,
        EventKind::Voicemail,
        EventKind::SmartAction,
        EventKind::Csat,
        EventKind::RecordingReady,
        EventKind::TranscriptReady,
        EventKind::VoicemailRead,
        EventKind::VoicemailDismissed,
        EventKind::VoicemailCalledBack,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::Assigned => "assigned",
            EventKind::Offered => "offered",
            EventKind::Connected => "connected",
            EventKind::Held => "held",
            EventKind::Resumed => "resumed",
            EventKind::Muted => "muted",
            EventKind::Unmuted => "unmuted",
            EventKind::Transferred => "transferred",
            EventKind::Dtmf => "dtmf",
            EventKind::Ended => "ended",
            EventKind::WrapUpEnded => "wrap_up_ended",
            EventKind::Missed => "missed",
            EventKind::Abandoned => "abandoned",
            EventKind::Voicemail => "voicemail",
            EventKind::SmartAction => "smart_action",
            EventKind::Csat => "csat",
            EventKind::RecordingReady => "recording_ready",
            EventKind::TranscriptReady => "transcript_ready",
            EventKind::VoicemailRead => "voicemail_read",
            EventKind::VoicemailDismissed => "voicemail_dismissed",
            EventKind::VoicemailCalledBack => "voicemail_called_back",
        }
    }

    /// Whether the event changes the call the agent sees (the others are for CRM sync).
    pub fn changes_the_call(self) -> bool {
        !matches!(
            self,
            EventKind::Voicemail
                | EventKind::SmartAction
                | EventKind::Csat
                | EventKind::RecordingReady
                | EventKind::TranscriptReady
                | EventKind::VoicemailRead
                | EventKind::VoicemailDismissed
                | EventKind::VoicemailCalledBack
        )
    }
}

/// The session's status as the platform names it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SessionStatus {
    Selecting,
    Queued,
    Assigned,
    Connecting,
    Ringing,
    Connected,
    OnHold,
    WrapUp,
    Finished,
    Failed,
    Missed,
    Abandoned,
    Voicemail,
    Deflected,
    Transferred,
}

impl SessionStatus {
    const NAMES: [(&'static str, SessionStatus); 15] = [
        ("selecting", SessionStatus::Selecting),
        ("queued", SessionStatus::Queued),
        ("assigned", SessionStatus::Assigned),
        ("connecting", SessionStatus::Connecting),
        ("ringing", SessionStatus::Ringing),
        ("connected", SessionStatus::Connected),
        ("on_hold", SessionStatus::OnHold),
        ("wrap_up", SessionStatus::WrapUp),
        ("finished", SessionStatus::Finished),
        ("failed", SessionStatus::Failed),
        ("missed", SessionStatus::Missed),
        ("abandoned", SessionStatus::Abandoned),
        ("voicemail", SessionStatus::Voicemail),
        ("deflected", SessionStatus::Deflected),
        ("transferred", SessionStatus::Transferred),
    ];

    pub fn parse(text: &str) -> Option<SessionStatus> {
        Self::NAMES
            .iter()
            .find(|(name, _)| *name == text)
            .map(|(_, s)| *s)
    }

    pub fn as_str(self) -> &'static str {
        Self::NAMES
            .iter()
            .find(|(_, s)| *s == self)
            .map_or("finished", |(name, _)| name)
    }

    /// The call state the agent sees.
    pub fn call_state(self, direction: Direction) -> CallState {
        use SessionStatus::*;
        match self {
            Selecting | Queued | Assigned | Connecting => match direction {
                Direction::Inbound => CallState::Ringing,
                Direction::Outbound => CallState::Dialing,
            },
            Ringing => CallState::Ringing,
            Connected => CallState::Connected,
            OnHold => CallState::OnHold,
            WrapUp => CallState::WrapUp,
            Finished | Failed | Missed | Abandoned | Voicemail | Deflected | Transferred => {
                CallState::Ended
            }
        }
    }
}

/// The call or chat the event is about.
#[derive(Clone, Debug, PartialEq)]
pub struct Session {
    pub channel: Channel,
    /// The gateway's own id for the session (its store's), used on the agent's stream.
    pub id: i64,
    /// The platform's id (`call_id`, a chat's id), as text: what Kustomer records show.
    pub platform_id: String,
    pub status: SessionStatus,
    pub direction: Direction,
    /// The customer: a phone number (E.164) for a call, an identifier for a chat.
    pub end_user: Option<String>,
    /// The CRM conversation (`out_ticket_id`).
    pub conversation_id: Option<String>,
    pub connected_at_ms: Option<i64>,
    pub ended_at_ms: Option<i64>,
    pub muted: bool,
    pub end_reason: Option<String>,
    /// What the CRM sync needs beyond the call.
    pub crm: CrmFacts,
}

/// Where a session came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Origin {
    /// A phone call through the IVR.
    Ivr,
    /// The Mobile SDK (call or chat).
    MobileSdk,
    /// The Web SDK (call or chat).
    WebSdk,
    /// Placed by an agent (click-to-call, call back).
    Agent,
}

impl Origin {
    pub fn as_str(self) -> &'static str {
        match self {
            Origin::Ivr => "ivr",
            Origin::MobileSdk => "mobile_sdk",
            Origin::WebSdk => "web_sdk",
            Origin::Agent => "agent",
        }
    }

    fn parse(text: &str) -> Option<Origin> {
        [
            Origin::Ivr,
            Origin::MobileSdk,
            Origin::WebSdk,
            Origin::Agent,
        ]
        .into_iter()
        .find(|o| o.as_str() == text)
    }

    pub fn is_sdk(self) -> bool {
        matches!(self, Origin::MobileSdk | Origin::WebSdk)
    }
}

/// The leaf queue the customer selected (`selected_menu`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Menu {
    pub id: i64,
    pub name: String,
}

/// The type an SDK custom data value declares.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CustomType {
    String,
    Number,
    /// Unix milliseconds.
    Date,
    Url,
    Boolean,
}

/// One entry of the SDK's `custom_data` (`{key: {label, value, type}}`), its value checked
/// against its type.
#[derive(Clone, Debug, PartialEq)]
pub struct CustomDatum {
    pub key: String,
    pub label: Option<String>,
    pub kind: CustomType,
    pub value: CustomValue,
}

#[derive(Clone, Debug, PartialEq)]
pub enum CustomValue {
    Text(String),
    Number(f64),
    Bool(bool),
}

/// Why a call was placed after another one (the widget's "Hang up and call back" and "Call
/// back" after a call under 10 seconds).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CallbackReason {
    HangUpAndCallBack,
    CallBack,
}

/// The call this one follows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CallbackOf {
    pub session_id: i64,
    pub reason: CallbackReason,
}

/// The session facts only the CRM sync reads. All optional on the wire.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct CrmFacts {
    pub origin: Option<Origin>,
    pub menu: Option<Menu>,
    /// The menu path the customer took, e.g. "Support > Billing".
    pub menu_path: Option<String>,
    /// ISO 639-1.
    pub lang: Option<String>,
    /// The end user's phone (E.164) when `identifier` is an app user id.
    pub phone: Option<String>,
    pub email: Option<String>,
    pub name: Option<String>,
    pub queue_seconds: Option<u32>,
    pub call_seconds: Option<u32>,
    pub hold_seconds: Option<u32>,
    /// The call's recording, when recording is on.
    pub recording_url: Option<String>,
    pub custom_data: Vec<CustomDatum>,
    pub callback_of: Option<CallbackOf>,
}

/// The agent the session belongs to, and its statuses after the event.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Agent {
    pub id: Option<i64>,
    /// Lower-cased.
    pub email: Option<String>,
    pub status: Option<StatusView>,
    pub next_status: Option<StatusView>,
}

/// What an event carries beyond the session.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Detail {
    None,
    Voicemail {
        recording_url: String,
    },
    Csat {
        rating: u8,
        comment: Option<String>,
    },
    SmartAction(SmartAction),
    Transfer {
        target: Option<String>,
        /// The agent who receives the call, when it went to an agent.
        agent_email: Option<String>,
    },
    Dtmf {
        digits: Option<String>,
    },
    Transcript {
        text: String,
    },
}

/// A SmartAction's outcome.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SmartAction {
    pub name: String,
    pub outcome: SmartActionOutcome,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SmartActionOutcome {
    Completed {
        result: String,
        files: Vec<SharedFile>,
    },
    /// Failed on the user's side, e.g. "fingerprint access not enabled".
    Failed { error: String },
}

/// A file the end user shared through a SmartAction (photo, screenshot, video).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SharedFile {
    pub name: String,
    pub url: String,
    pub content_type: String,
}

/// Longest chat transcript taken (it must fit the 64 KiB webhook body anyway).
pub const MAX_TRANSCRIPT_CHARS: usize = 60_000;

/// A decoded, checked session webhook.
#[derive(Clone, Debug, PartialEq)]
pub struct SessionWebhook {
    pub event_id: String,
    pub channel: Channel,
    pub kind: EventKind,
    pub occurred_at_ms: i64,
    pub session: Session,
    pub agent: Option<Agent>,
    pub detail: Detail,
}

// The wire shape. Every field optional here, so a missing one is reported by name below.
#[derive(Deserialize)]
struct WireWebhook {
    event_id: Option<String>,
    event_type: Option<String>,
    occurred_at: Option<String>,
    session: Option<WireSession>,
    #[serde(default)]
    agent: Option<WireAgent>,
    #[serde(default)]
    voicemail: Option<WireVoicemail>,
    #[serde(default)]
    csat: Option<WireCsat>,
    #[serde(default)]
    smart_action: Option<WireSmartAction>,
    #[serde(default)]
    transfer: Option<WireTransfer>,
    #[serde(default)]
    dtmf: Option<WireDtmf>,
    #[serde(default)]
    transcript: Option<WireTranscript>,
}

#[derive(Deserialize)]
struct WireTranscript {
    text: Option<String>,
}

#[derive(Deserialize)]
struct WireMenu {
    id: Option<i64>,
    name: Option<String>,
}

#[derive(Deserialize)]
struct WireCustomDatum {
    #[serde(default)]
    label: Option<String>,
    #[serde(default)]
    value: serde_json::Value,
    #[serde(rename = "type", default)]
    kind: Option<String>,
    #[serde(default)]
    invisible_to_agent: Option<bool>,
}

#[derive(Deserialize)]
struct WireCallbackOf {
    session_id: Option<i64>,
    reason: Option<String>,
}

#[derive(Deserialize)]
struct WireFile {
    name: Option<String>,
    url: Option<String>,
    #[serde(default)]
    content_type: Option<String>,
}

#[derive(Deserialize)]
struct WireSession {
    #[serde(rename = "type")]
    kind: Option<String>,
    id: Option<serde_json::Value>,
    status: Option<String>,
    #[serde(default)]
    direction: Option<String>,
    #[serde(default)]
    end_user: Option<WireEndUser>,
    #[serde(default)]
    out_ticket_id: Option<String>,
    #[serde(default)]
    connected_at: Option<String>,
    #[serde(default)]
    ends_at: Option<String>,
    #[serde(default)]
    muted: Option<bool>,
    #[serde(default)]
    end_reason: Option<String>,
    #[serde(default)]
    origin: Option<String>,
    #[serde(default)]
    selected_menu: Option<WireMenu>,
    #[serde(default)]
    menu_path: Option<String>,
    #[serde(default)]
    lang: Option<String>,
    #[serde(default)]
    queue_duration: Option<i64>,
    #[serde(default)]
    call_duration: Option<i64>,
    #[serde(default)]
    hold_duration: Option<i64>,
    #[serde(default)]
    recording_url: Option<String>,
    #[serde(default)]
    custom_data: Option<serde_json::Map<String, serde_json::Value>>,
    #[serde(default)]
    callback_of: Option<WireCallbackOf>,
}

#[derive(Deserialize)]
struct WireEndUser {
    #[serde(default)]
    identifier: Option<String>,
    #[serde(default)]
    phone: Option<String>,
    #[serde(default)]
    email: Option<String>,
    #[serde(default)]
    name: Option<String>,
}

#[derive(Deserialize)]
struct WireStatus {
    id: i64,
    name: String,
}

#[derive(Deserialize)]
struct WireAgent {
    #[serde(default)]
    id: Option<i64>,
    #[serde(default)]
    email: Option<String>,
    #[serde(default)]
    status: Option<WireStatus>,
    #[serde(default)]
    next_status: Option<WireStatus>,
}

#[derive(Deserialize)]
struct WireVoicemail {
    recording_url: Option<String>,
}

#[derive(Deserialize)]
struct WireCsat {
    rating: Option<i64>,
    #[serde(default)]
    comment: Option<String>,
}

#[derive(Deserialize)]
struct WireSmartAction {
    name: Option<String>,
    #[serde(default)]
    status: Option<String>,
    #[serde(default)]
    result: Option<String>,
    #[serde(default)]
    error: Option<String>,
    #[serde(default)]
    files: Vec<WireFile>,
}

#[derive(Deserialize)]
struct WireTransfer {
    #[serde(default)]
    target: Option<String>,
    #[serde(default)]
    agent_email: Option<String>,
}

#[derive(Deserialize)]
struct WireDtmf {
    #[serde(default)]
    digits: Option<String>,
}

fn required<T>(value: Option<T>, field: &str) -> Result<T, InvalidWebhook> {
    value.ok_or_else(|| invalid(format!("{field} is missing")))
}

/// A bounded text without control characters; empty counts as absent.
fn text(value: Option<String>, field: &str, max: usize) -> Result<Option<String>, InvalidWebhook> {
    let Some(value) = value else { return Ok(None) };
    let count = value.chars().count();
    if count > max {
        return Err(invalid(format!(
            "{field} is too long ({count} characters, at most {max})"
        )));
    }
    if value.chars().any(char::is_control) {
        return Err(invalid(format!("{field} contains control characters")));
    }
    let trimmed = value.trim();
    Ok((!trimmed.is_empty()).then(|| trimmed.to_owned()))
}

fn timestamp(value: Option<String>, field: &str) -> Result<Option<i64>, InvalidWebhook> {
    match value {
        None => Ok(None),
        Some(t) => parse_utc_ms(&t).map(Some).ok_or_else(|| {
            invalid(format!(
                "{field} is not an ISO-8601 UTC timestamp like 2026-11-21T16:00:00.000Z"
            ))
        }),
    }
}

/// A lower-cased email address, checked for an `@`.
pub(crate) fn email_text(
    value: Option<String>,
    field: &str,
) -> Result<Option<String>, InvalidWebhook> {
    let email = text(value, field, 254)?.map(|e| e.to_lowercase());
    if email.as_deref().is_some_and(|e| !e.contains('@')) {
        return Err(invalid(format!("{field} is not an email address")));
    }
    Ok(email)
}

/// An http(s) URL.
fn url(value: Option<String>, field: &str) -> Result<Option<String>, InvalidWebhook> {
    let url = text(value, field, MAX_URL_CHARS)?;
    if url
        .as_deref()
        .is_some_and(|u| !(u.starts_with("https://") || u.starts_with("http://")))
    {
        return Err(invalid(format!("{field} must be an http(s) URL")));
    }
    Ok(url)
}

/// A duration in whole seconds, at most a day.
fn seconds(value: Option<i64>, field: &str) -> Result<Option<u32>, InvalidWebhook> {
    match value {
        None => Ok(None),
        Some(s) if (0..=86_400).contains(&s) => Ok(u32::try_from(s).ok()),
        Some(_) => Err(invalid(format!("{field} must be 0 to 86400 seconds"))),
    }
}

/// Most custom data entries taken from one session.
pub const MAX_CUSTOM_DATA: usize = 50;

/// The SDK's `custom_data`, each value checked against its declared type. Entries the agent
/// must not see (`invisible_to_agent`) are kept: the CRM mapping decides where they go.
pub fn custom_data(
    value: Option<serde_json::Map<String, serde_json::Value>>,
) -> Result<Vec<CustomDatum>, InvalidWebhook> {
    let Some(map) = value else {
        return Ok(Vec::new());
    };
    if map.len() > MAX_CUSTOM_DATA {
        return Err(invalid(format!(
            "session.custom_data has more than {MAX_CUSTOM_DATA} entries"
        )));
    }
    let mut data = Vec::with_capacity(map.len());
    for (key, entry) in map {
        let field = format!("session.custom_data.{}", truncate(&key));
        if key.is_empty() || key.chars().count() > 100 || key.chars().any(char::is_control) {
            return Err(invalid(format!(
                "{field}: keys are 1 to 100 characters without control characters"
            )));
        }
        let entry: WireCustomDatum = serde_json::from_value(entry)
            .map_err(|_| invalid(format!("{field} must be {{label, value, type}}")))?;
        let _ = entry.invisible_to_agent;
        let kind = match entry.kind.as_deref() {
            None | Some("string") => CustomType::String,
            Some("number") => CustomType::Number,
            Some("date") => CustomType::Date,
            Some("url") => CustomType::Url,
            Some("boolean") => CustomType::Boolean,
            Some(_) => {
                return Err(invalid(format!(
                    "{field}.type must be string, number, date, url or boolean"
                )))
            }
        };
        let mismatch = || invalid(format!("{field}.value does not match its type"));
        let value = match (kind, entry.value) {
            (CustomType::String, serde_json::Value::String(s)) => CustomValue::Text(
                text(Some(s), &format!("{field}.value"), 1024)?.unwrap_or_default(),
            ),
            (CustomType::Url, serde_json::Value::String(s)) => {
                CustomValue::Text(url(Some(s), &format!("{field}.value"))?.unwrap_or_default())
            }
            (CustomType::Number | CustomType::Date, serde_json::Value::Number(n)) => {
                CustomValue::Number(n.as_f64().filter(|f| f.is_finite()).ok_or_else(mismatch)?)
            }
            (CustomType::Boolean, serde_json::Value::Bool(b)) => CustomValue::Bool(b),
            _ => return Err(mismatch()),
        };
        data.push(CustomDatum {
            key,
            label: text(entry.label, &format!("{field}.label"), 100)?,
            kind,
            value,
        });
    }
    Ok(data)
}

/// The session's id: a positive number (also the gateway's id, in its own events), or the
/// platform's id as text (the extension names sessions as the platform does; the gateway puts
/// its own id in `id` after reading it).
fn session_id(value: serde_json::Value) -> Result<(i64, String), InvalidWebhook> {
    match value {
        serde_json::Value::Number(n) => {
            let id = positive_id(n.as_i64().unwrap_or(0), "session.id")?;
            Ok((id, id.to_string()))
        }
        serde_json::Value::String(s)
            if !s.is_empty()
                && s.len() <= 64
                && s.chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_') =>
        {
            Ok((0, s))
        }
        _ => Err(invalid(
            "session.id must be a positive integer or an id of letters and digits",
        )),
    }
}

fn positive_id(value: i64, field: &str) -> Result<i64, InvalidWebhook> {
    if value > 0 {
        Ok(value)
    } else {
        Err(invalid(format!("{field} must be a positive integer")))
    }
}

fn status(value: Option<WireStatus>, field: &str) -> Result<Option<StatusView>, InvalidWebhook> {
    let Some(status) = value else { return Ok(None) };
    let name = required(
        text(Some(status.name), &format!("{field}.name"), 100)?,
        &format!("{field}.name"),
    )?;
    Ok(Some(StatusView {
        id: status.id,
        name,
    }))
}

fn channel(text: &str) -> Option<Channel> {
    match text {
        "call" => Some(Channel::Voice),
        "chat" => Some(Channel::Chat),
        _ => None,
    }
}

/// Decodes and checks a webhook body.
pub fn decode(body: &[u8]) -> Result<SessionWebhook, InvalidWebhook> {
    let wire: WireWebhook =
        serde_json::from_slice(body).map_err(|e| invalid(format!("not a session event: {e}")))?;

    let event_id = required(
        text(wire.event_id, "event_id", MAX_EVENT_ID_CHARS)?,
        "event_id",
    )?;
    let event_type = required(wire.event_type, "event_type")?;
    let unknown = || invalid(format!("unknown event_type {:?}", truncate(&event_type)));
    let (prefix, name) = event_type.split_once('.').ok_or_else(unknown)?;
    let event_channel = channel(prefix).ok_or_else(unknown)?;
    let kind = EventKind::ALL
        .into_iter()
        .find(|k| k.as_str() == name)
        .ok_or_else(unknown)?;
    let occurred_at_ms = required(timestamp(wire.occurred_at, "occurred_at")?, "occurred_at")?;

    let session = required(wire.session, "session")?;
    let session_type = required(session.kind, "session.type")?;
    let session_channel = channel(&session_type)
        .ok_or_else(|| invalid("session.type must be \"call\" or \"chat\""))?;
    if session_channel != event_channel {
        return Err(invalid(format!(
            "event_type {event_type:?} does not match session.type {session_type:?}"
        )));
    }
    let (id, platform_id) = session_id(required(session.id, "session.id")?)?;
    let status_text = required(session.status, "session.status")?;
    let session_status = SessionStatus::parse(&status_text).ok_or_else(|| {
        invalid(format!(
            "unknown session.status {:?}",
            truncate(&status_text)
        ))
    })?;
    let direction = match session.direction.as_deref() {
        None | Some("inbound") => Direction::Inbound,
        Some("outbound") => Direction::Outbound,
        Some(_) => {
            return Err(invalid(
                "session.direction must be \"inbound\" or \"outbound\"",
            ))
        }
    };
    let (end_user, phone, email, name) = match session.end_user {
        Some(user) => (
            text(
                user.identifier,
                "session.end_user.identifier",
                MAX_TEXT_CHARS,
            )?,
            text(user.phone, "session.end_user.phone", 32)?,
            email_text(user.email, "session.end_user.email")?,
            text(user.name, "session.end_user.name", 100)?,
        ),
        None => (None, None, None, None),
    };
    let crm = CrmFacts {
        origin: match text(session.origin, "session.origin", 32)? {
            None => None,
            Some(o) => Some(Origin::parse(&o).ok_or_else(|| {
                invalid("session.origin must be \"ivr\", \"mobile_sdk\", \"web_sdk\" or \"agent\"")
            })?),
        },
        menu: match session.selected_menu {
            None => None,
            Some(menu) => Some(Menu {
                id: positive_id(
                    required(menu.id, "session.selected_menu.id")?,
                    "session.selected_menu.id",
                )?,
                name: required(
                    text(menu.name, "session.selected_menu.name", 100)?,
                    "session.selected_menu.name",
                )?,
            }),
        },
        menu_path: text(session.menu_path, "session.menu_path", MAX_TEXT_CHARS)?,
        lang: text(session.lang, "session.lang", 16)?,
        phone,
        email,
        name,
        queue_seconds: seconds(session.queue_duration, "session.queue_duration")?,
        call_seconds: seconds(session.call_duration, "session.call_duration")?,
        hold_seconds: seconds(session.hold_duration, "session.hold_duration")?,
        recording_url: url(session.recording_url, "session.recording_url")?,
        custom_data: custom_data(session.custom_data)?,
        callback_of: match session.callback_of {
            None => None,
            Some(of) => Some(CallbackOf {
                session_id: positive_id(
                    required(of.session_id, "session.callback_of.session_id")?,
                    "session.callback_of.session_id",
                )?,
                reason: match of.reason.as_deref() {
                    Some("hang_up_and_call_back") => CallbackReason::HangUpAndCallBack,
                    Some("call_back") => CallbackReason::CallBack,
                    _ => {
                        return Err(invalid(
                            "session.callback_of.reason must be \"hang_up_and_call_back\" or \"call_back\"",
                        ))
                    }
                },
            }),
        },
    };
    let session = Session {
        channel: session_channel,
        id,
        platform_id,
        status: session_status,
        direction,
        end_user,
        conversation_id: text(
            session.out_ticket_id,
            "session.out_ticket_id",
            MAX_TEXT_CHARS,
        )?,
        connected_at_ms: timestamp(session.connected_at, "session.connected_at")?,
        ended_at_ms: timestamp(session.ends_at, "session.ends_at")?,
        muted: session.muted.unwrap_or(false),
        end_reason: text(session.end_reason, "session.end_reason", MAX_TEXT_CHARS)?,
        crm,
    };

    let agent = match wire.agent {
        None => None,
        Some(agent) => {
            let id = agent.id.map(|id| positive_id(id, "agent.id")).transpose()?;
            let email = text(agent.email, "agent.email", 254)?.map(|e| e.to_lowercase());
            if email.as_deref().is_some_and(|e| !e.contains('@')) {
                return Err(invalid("agent.email is not an email address"));
            }
            if id.is_none() && email.is_none() {
                return Err(invalid("agent needs an id or an email"));
            }
            Some(Agent {
                id,
                email,
                status: status(agent.status, "agent.status")?,
                next_status: status(agent.next_status, "agent.next_status")?,
            })
        }
    };

    let detail = match kind {
        EventKind::Voicemail => {
            let voicemail = required(wire.voicemail, "voicemail")?;
            let url = required(
                text(
                    voicemail.recording_url,
                    "voicemail.recording_url",
                    MAX_URL_CHARS,
                )?,
                "voicemail.recording_url",
            )?;
            if !(url.starts_with("https://") || url.starts_with("http://")) {
                return Err(invalid("voicemail.recording_url must be an http(s) URL"));
            }
            Detail::Voicemail { recording_url: url }
        }
        EventKind::Csat => {
            let csat = required(wire.csat, "csat")?;
            let rating = required(csat.rating, "csat.rating")?;
            let rating = u8::try_from(rating)
                .ok()
                .filter(|r| (1..=5).contains(r))
                .ok_or_else(|| invalid("csat.rating must be 1 to 5"))?;
            Detail::Csat {
                rating,
                comment: text(csat.comment, "csat.comment", 2000)?,
            }
        }
        EventKind::SmartAction => {
            let action = required(wire.smart_action, "smart_action")?;
            let name = required(
                text(action.name, "smart_action.name", 100)?,
                "smart_action.name",
            )?;
            let outcome = match action.status.as_deref() {
                None | Some("completed") => {
                    if action.files.len() > 10 {
                        return Err(invalid("smart_action.files has more than 10 files"));
                    }
                    let mut files = Vec::with_capacity(action.files.len());
                    for file in action.files {
                        files.push(SharedFile {
                            name: required(
                                text(file.name, "smart_action.files.name", 100)?,
                                "smart_action.files.name",
                            )?,
                            url: required(
                                url(file.url, "smart_action.files.url")?,
                                "smart_action.files.url",
                            )?,
                            content_type: text(
                                file.content_type,
                                "smart_action.files.content_type",
                                100,
                            )?
                            .unwrap_or_else(|| "application/octet-stream".into()),
                        });
                    }
                    SmartActionOutcome::Completed {
                        result: required(
                            text(action.result, "smart_action.result", MAX_TEXT_CHARS)?,
                            "smart_action.result",
                        )?,
                        files,
                    }
                }
                Some("failed") => SmartActionOutcome::Failed {
                    error: required(
                        text(action.error, "smart_action.error", MAX_TEXT_CHARS)?,
                        "smart_action.error",
                    )?,
                },
                Some(_) => {
                    return Err(invalid(
                        "smart_action.status must be \"completed\" or \"failed\"",
                    ))
                }
            };
            Detail::SmartAction(SmartAction { name, outcome })
        }
        EventKind::TranscriptReady => {
            let transcript = required(wire.transcript, "transcript")?;
            let body = required(transcript.text, "transcript.text")?;
            let count = body.chars().count();
            if count > MAX_TRANSCRIPT_CHARS {
                return Err(invalid(format!(
                    "transcript.text is too long ({count} characters, at most {MAX_TRANSCRIPT_CHARS})"
                )));
            }
            // A transcript has lines: only newlines and tabs among the control characters.
            if body
                .chars()
                .any(|c| c.is_control() && c != '\n' && c != '\t' && c != '\r')
            {
                return Err(invalid("transcript.text contains control characters"));
            }
            if body.trim().is_empty() {
                return Err(invalid("transcript.text is empty"));
            }
            Detail::Transcript { text: body }
        }
        EventKind::RecordingReady if session.crm.recording_url.is_none() => {
            return Err(invalid("session.recording_url is missing"));
        }
        EventKind::Transferred => match wire.transfer {
            Some(t) => Detail::Transfer {
                target: text(t.target, "transfer.target", 100)?,
                agent_email: email_text(t.agent_email, "transfer.agent_email")?,
            },
            None => Detail::Transfer {
                target: None,
                agent_email: None,
            },
        },
        EventKind::Dtmf => Detail::Dtmf {
            digits: match wire.dtmf {
                Some(d) => text(d.digits, "dtmf.digits", 32)?,
                None => None,
            },
        },
        _ => Detail::None,
    };

    Ok(SessionWebhook {
        event_id,
        channel: event_channel,
        kind,
        occurred_at_ms,
        session,
        agent,
        detail,
    })
}

/// A hostile value quoted in a reason stays short.
fn truncate(text: &str) -> String {
    text.chars().take(40).collect()
}

impl Session {
    /// How the session is named in Kustomer external ids: `call-{id}` or `chat-{id}`, from
    /// the platform's id, so the same session finds the same records whatever the gateway's
    /// store.
    pub fn reference(&self) -> String {
        let prefix = match self.channel {
            Channel::Voice => "call",
            Channel::Chat => "chat",
        };
        format!("{prefix}-{}", self.platform_id)
    }
}

impl SessionWebhook {
    /// The wire name of the event type, e.g. `call.connected`.
    pub fn event_type(&self) -> String {
        let prefix = match self.channel {
            Channel::Voice => "call",
            Channel::Chat => "chat",
        };
        format!("{prefix}.{}", self.kind.as_str())
    }

    /// The call as the agent sees it after this event, for the events that change it.
    pub fn call_view(&self) -> Option<CallView> {
        if !self.kind.changes_the_call() {
            return None;
        }
        let session = &self.session;
        let state = session.status.call_state(session.direction);
        let end_reason = session.end_reason.clone().or_else(|| {
            (state == CallState::Ended && session.status != SessionStatus::Finished)
                .then(|| session.status.as_str().to_owned())
        });
        Some(CallView {
            call_id: session.id,
            channel: session.channel,
            direction: session.direction,
            state,
            number: match session.channel {
                Channel::Voice => session.end_user.clone(),
                Channel::Chat => None,
            },
            conversation_id: session.conversation_id.clone(),
            customer_id: None,
            connected_at_ms: session.connected_at_ms,
            ended_at_ms: session.ended_at_ms,
            muted: session.muted,
            needs_agent: session.status == SessionStatus::Selecting
                && session.direction == Direction::Outbound,
            end_reason,
        })
    }

    /// The agent's statuses after this event, when the event carries them.
    pub fn status_event(&self) -> Option<AgentEvent> {
        let agent = self.agent.as_ref()?;
        agent.status.as_ref()?;
        Some(AgentEvent::StatusChanged {
            status: agent.status.clone(),
            next_status: agent.next_status.clone(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{json, Value};

    fn example() -> Value {
        json!({
            "event_id": "sim-1", "event_type": "call.connected",
            "occurred_at": "2026-11-21T16:00:00.000Z",
            "session": {"type": "call", "id": 1001, "status": "connected", "direction": "inbound",
                "end_user": {"identifier": "+14155552671"}, "out_ticket_id": "conv-1",
                "connected_at": "2026-11-21T16:00:00.000Z", "ends_at": null, "muted": false,
                "end_reason": null, "brand_new_key": [1, 2]},
            "agent": {"id": 102, "email": "Grace.Hopper@example.com",
                "status": {"id": -7, "name": "In-call"}, "next_status": null},
            "unknown_top_level": {"ignored": true}
        })
    }

    fn with(path: &[&str], value: Value) -> Value {
        let mut body = example();
        let mut target = &mut body;
        for key in &path[..path.len() - 1] {
            target = &mut target[*key];
        }
        match value {
            Value::Null if path.len() == 1 => {
                if let Some(object) = target.as_object_mut() {
                    object.remove(path[path.len() - 1]);
                }
            }
            value => target[path[path.len() - 1]] = value,
        }
        body
    }

    fn without(path: &[&str]) -> Value {
        let mut body = example();
        let mut target = &mut body;
        for key in &path[..path.len() - 1] {
            target = &mut target[*key];
        }
        if let Some(object) = target.as_object_mut() {
            object.remove(path[path.len() - 1]);
        }
        body
    }

    fn reason(body: &Value) -> String {
        match decode(body.to_string().as_bytes()) {
            Ok(webhook) => panic!("accepted: {webhook:?}"),
            Err(InvalidWebhook(reason)) => reason,
        }
    }

    #[test]
    fn the_example_decodes_into_a_connected_call() {
        let webhook = match decode(example().to_string().as_bytes()) {
            Ok(w) => w,
            Err(e) => panic!("{e}"),
        };
        assert_eq!(webhook.event_type(), "call.connected");
        assert_eq!(webhook.occurred_at_ms, 1_795_276_800_000);
        let agent = webhook.agent.clone().unwrap_or_else(|| panic!("agent"));
        assert_eq!(agent.id, Some(102));
        assert_eq!(agent.email.as_deref(), Some("grace.hopper@example.com"));
        assert_eq!(
            webhook.call_view(),
            Some(CallView {
                call_id: 1001,
                channel: Channel::Voice,
                direction: Direction::Inbound,
                state: CallState::Connected,
                number: Some("+14155552671".into()),
                conversation_id: Some("conv-1".into()),
                customer_id: None,
                connected_at_ms: Some(1_795_276_800_000),
                ended_at_ms: None,
                muted: false,
                needs_agent: false,
                end_reason: None,
            })
        );
        assert_eq!(
            webhook.status_event(),
            Some(AgentEvent::StatusChanged {
                status: Some(StatusView {
                    id: -7,
                    name: "In-call".into()
                }),
                next_status: None,
            })
        );
    }

    #[test]
    fn malformed_and_hostile_payloads_are_refused_with_a_reason() {
        let huge = "x".repeat(100_000);
        let cases: Vec<(&str, Value, &str)> = vec![
            ("not json", json!("just a string"), "not a session event"),
            ("array", json!([1, 2]), "not a session event"),
            ("no event_id", without(&["event_id"]), "event_id is missing"),
            (
                "empty event_id",
                with(&["event_id"], json!("  ")),
                "event_id is missing",
            ),
            (
                "huge event_id",
                with(&["event_id"], json!(huge)),
                "event_id is too long",
            ),
            (
                "control chars",
                with(&["event_id"], json!("a\u{0}b")),
                "control characters",
            ),
            (
                "event_id a number",
                with(&["event_id"], json!(7)),
                "invalid type",
            ),
            (
                "no event_type",
                without(&["event_type"]),
                "event_type is missing",
            ),
            (
                "unknown event",
                with(&["event_type"], json!("call.exploded")),
                "unknown event_type",
            ),
            (
                "no channel",
                with(&["event_type"], json!("connected")),
                "unknown event_type",
            ),
            (
                "odd channel",
                with(&["event_type"], json!("fax.connected")),
                "unknown event_type",
            ),
            (
                "mismatch",
                with(&["event_type"], json!("chat.connected")),
                "does not match",
            ),
            (
                "no time",
                without(&["occurred_at"]),
                "occurred_at is missing",
            ),
            (
                "local time",
                with(&["occurred_at"], json!("2026-11-21T16:00:00")),
                "occurred_at is not",
            ),
            ("no session", without(&["session"]), "session is missing"),
            (
                "session a string",
                with(&["session"], json!("call")),
                "invalid type",
            ),
            (
                "no session id",
                without(&["session", "id"]),
                "session.id is missing",
            ),
            (
                "negative id",
                with(&["session", "id"], json!(-4)),
                "session.id must be a positive",
            ),
            (
                "zero id",
                with(&["session", "id"], json!(0)),
                "session.id must be a positive",
            ),
            (
                "id a path",
                with(&["session", "id"], json!("../1001")),
                "session.id must be a positive integer or an id",
            ),
            (
                "id too big",
                with(&["session", "id"], json!(1e30)),
                "session.id must be a positive",
            ),
            (
                "bad type",
                with(&["session", "type"], json!("fax")),
                "session.type must be",
            ),
            (
                "bad status",
                with(&["session", "status"], json!("exploded")),
                "unknown session.status",
            ),
            (
                "bad direction",
                with(&["session", "direction"], json!("sideways")),
                "session.direction",
            ),
            (
                "bad connected_at",
                with(&["session", "connected_at"], json!("soon")),
                "session.connected_at",
            ),
            (
                "huge identifier",
                with(&["session", "end_user", "identifier"], json!(huge)),
                "identifier is too long",
            ),
            (
                "huge ticket",
                with(&["session", "out_ticket_id"], json!(huge)),
                "out_ticket_id is too long",
            ),
            (
                "muted a string",
                with(&["session", "muted"], json!("yes")),
                "invalid type",
            ),
            (
                "negative agent",
                with(&["agent", "id"], json!(-102)),
                "agent.id must be a positive",
            ),
            (
                "anonymous agent",
                json!({"event_id": "e", "event_type": "call.offered",
                "occurred_at": "2026-11-21T16:00:00Z",
                "session": {"type": "call", "id": 1, "status": "ringing"}, "agent": {}}),
                "agent needs an id or an email",
            ),
            (
                "bad email",
                with(&["agent", "email"], json!("nobody")),
                "not an email",
            ),
            (
                "status without name",
                with(&["agent", "status"], json!({"id": 0})),
                "missing field `name`",
            ),
            (
                "empty status name",
                with(&["agent", "status"], json!({"id": 0, "name": ""})),
                "agent.status.name is missing",
            ),
            (
                "voicemail without url",
                with(&["event_type"], json!("call.voicemail")),
                "voicemail is missing",
            ),
            (
                "csat without rating",
                with(&["event_type"], json!("call.csat")),
                "csat is missing",
            ),
        ];
        for (name, body, want) in cases {
            let got = reason(&body);
            assert!(
                got.contains(want),
                "{name}: {got:?} should contain {want:?}"
            );
            assert!(got.len() < 400, "{name}: the reason stays short");
        }
    }

    #[test]
    fn details_are_checked() {
        let detail = |event: &str, key: &str, value: Value| {
            let mut body = with(&["event_type"], json!(event));
            body[key] = value;
            decode(body.to_string().as_bytes())
        };
        let rows: Vec<(&str, &str, Value, Result<Detail, &str>)> = vec![
            (
                "call.csat",
                "csat",
                json!({"rating": 5}),
                Ok(Detail::Csat {
                    rating: 5,
                    comment: None,
                }),
            ),
            (
                "call.csat",
                "csat",
                json!({"rating": 0}),
                Err("csat.rating must be 1 to 5"),
            ),
            (
                "call.csat",
                "csat",
                json!({"rating": 6}),
                Err("csat.rating must be 1 to 5"),
            ),
            (
                "call.csat",
                "csat",
                json!({"rating": -1}),
                Err("csat.rating must be 1 to 5"),
            ),
            (
                "call.voicemail",
                "voicemail",
                json!({"recording_url": "https://r.example/1.wav"}),
                Ok(Detail::Voicemail {
                    recording_url: "https://r.example/1.wav".into(),
                }),
            ),
            (
                "call.voicemail",
                "voicemail",
                json!({"recording_url": "javascript:alert(1)"}),
                Err("must be an http(s) URL"),
            ),
            (
                "call.smart_action",
                "smart_action",
                json!({"name": "Get Verification", "result": "verified"}),
                Ok(Detail::SmartAction(SmartAction {
                    name: "Get Verification".into(),
                    outcome: SmartActionOutcome::Completed {
                        result: "verified".into(),
                        files: Vec::new(),
                    },
                })),
            ),
            (
                "call.smart_action",
                "smart_action",
                json!({"name": "Get Verification"}),
                Err("smart_action.result is missing"),
            ),
            (
                "call.dtmf",
                "dtmf",
                json!({"digits": "12#"}),
                Ok(Detail::Dtmf {
                    digits: Some("12#".into()),
                }),
            ),
            (
                "call.transferred",
                "transfer",
                json!({"target": "Billing"}),
                Ok(Detail::Transfer {
                    target: Some("Billing".into()),
                    agent_email: None,
                }),
            ),
        ];
        for (event, key, value, want) in rows {
            let got = detail(event, key, value.clone())
                .map(|w| w.detail)
                .map_err(|e| e.0);
            match (&got, &want) {
                (Ok(g), Ok(w)) => assert_eq!(g, w, "{event} {value}"),
                (Err(g), Err(w)) => assert!(g.contains(w), "{event} {value}: {g}"),
                _ => panic!("{event} {value}: got {got:?}, want {want:?}"),
            }
        }
    }

    #[test]
    fn crm_facts_are_decoded_and_checked() {
        let mut body = example();
        body["session"]["origin"] = json!("mobile_sdk");
        body["session"]["selected_menu"] = json!({"id": 7, "name": "Billing"});
        body["session"]["menu_path"] = json!("Support > Billing");
        body["session"]["lang"] = json!("fr");
        body["session"]["end_user"] = json!({"identifier": "app-user-9", "phone": "+33612345678",
            "email": "Jean@Example.com", "name": "Jean"});
        body["session"]["queue_duration"] = json!(12);
        body["session"]["call_duration"] = json!(95);
        body["session"]["hold_duration"] = json!(0);
        body["session"]["recording_url"] = json!("https://r.example/1001.wav");
        body["session"]["custom_data"] = json!({
            "order": {"label": "Order", "value": "A-17", "type": "string"},
            "vip": {"label": "VIP", "value": true, "type": "boolean"},
            "spent": {"value": 120.5, "type": "number"}});
        body["session"]["callback_of"] = json!({"session_id": 1000, "reason": "call_back"});
        let webhook = decode(body.to_string().as_bytes()).map_err(|e| e.0);
        let crm = webhook.map(|w| w.session.crm);
        let crm = crm.unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(crm.origin, Some(Origin::MobileSdk));
        assert_eq!(
            crm.menu,
            Some(Menu {
                id: 7,
                name: "Billing".into()
            })
        );
        assert_eq!(crm.email.as_deref(), Some("jean@example.com"));
        assert_eq!(crm.phone.as_deref(), Some("+33612345678"));
        assert_eq!(
            (crm.queue_seconds, crm.call_seconds, crm.hold_seconds),
            (Some(12), Some(95), Some(0))
        );
        assert_eq!(crm.custom_data.len(), 3);
        assert!(crm
            .custom_data
            .iter()
            .any(|d| d.key == "vip" && d.value == CustomValue::Bool(true)));
        assert_eq!(
            crm.callback_of,
            Some(CallbackOf {
                session_id: 1000,
                reason: CallbackReason::CallBack
            })
        );

        let refused: Vec<(&str, Value, &str)> = vec![
            ("origin", json!("fax"), "session.origin must be"),
            (
                "selected_menu",
                json!({"id": 0, "name": "x"}),
                "selected_menu.id must be a positive",
            ),
            (
                "call_duration",
                json!(-1),
                "call_duration must be 0 to 86400",
            ),
            (
                "recording_url",
                json!("file:///etc/passwd"),
                "must be an http(s) URL",
            ),
            (
                "custom_data",
                json!({"n": {"value": "12", "type": "number"}}),
                "does not match its type",
            ),
            (
                "custom_data",
                json!({"n": {"value": 1, "type": "color"}}),
                "type must be string",
            ),
            (
                "callback_of",
                json!({"session_id": 5, "reason": "again"}),
                "callback_of.reason must be",
            ),
        ];
        for (key, value, want) in refused {
            let mut body = example();
            body["session"][key] = value.clone();
            let got = reason(&body);
            assert!(got.contains(want), "{key} {value}: {got}");
        }
    }

    #[test]
    fn crm_only_events_carry_their_details() {
        let event = |name: &str, extra: Value| {
            let mut body = with(&["event_type"], json!(name));
            if let (Some(body), Value::Object(extra)) = (body.as_object_mut(), extra) {
                body.extend(extra);
            }
            decode(body.to_string().as_bytes()).map_err(|e| e.0)
        };
        let failed = event(
            "call.smart_action",
            json!({"smart_action": {"name": "Get Verification", "status": "failed",
                "error": "fingerprint access not enabled"}}),
        );
        assert_eq!(
            failed.map(|w| w.detail),
            Ok(Detail::SmartAction(SmartAction {
                name: "Get Verification".into(),
                outcome: SmartActionOutcome::Failed {
                    error: "fingerprint access not enabled".into()
                },
            }))
        );
        let files = event(
            "call.smart_action",
            json!({"smart_action": {"name": "Request Photos", "result": "2 photos",
                "files": [{"name": "a.jpg", "url": "https://f.example/a.jpg", "content_type": "image/jpeg"}]}}),
        );
        assert!(matches!(files.map(|w| w.detail),
            Ok(Detail::SmartAction(SmartAction { outcome: SmartActionOutcome::Completed { files, .. }, .. })) if files.len() == 1));
        let transcript = event(
            "chat.transcript_ready",
            json!({"transcript": {"text": "Agent: hi\nCustomer: hello"}}),
        );
        assert!(transcript.is_err(), "a chat event needs a chat session");
        let mut body = with(&["event_type"], json!("chat.transcript_ready"));
        body["session"]["type"] = json!("chat");
        body["transcript"] = json!({"text": "Agent: hi\nCustomer: hello"});
        let got = decode(body.to_string().as_bytes()).map_err(|e| e.0);
        assert_eq!(
            got.map(|w| w.detail),
            Ok(Detail::Transcript {
                text: "Agent: hi\nCustomer: hello".into()
            })
        );
        body["transcript"] = json!({"text": "a\u{0007}b"});
        assert!(reason(&body).contains("control characters"));
        let no_url = event("call.recording_ready", json!({}));
        assert_eq!(
            no_url.map(|w| w.kind),
            Err("session.recording_url is missing".into())
        );
        for kind in [
            "voicemail_read",
            "voicemail_dismissed",
            "voicemail_called_back",
        ] {
            let got = event(&format!("call.{kind}"), json!({})).map(|w| w.call_view());
            assert_eq!(got, Ok(None), "{kind} leaves the agent's call alone");
        }
    }

    #[test]
    fn session_statuses_map_to_what_the_agent_sees() {
        use SessionStatus as S;
        let rows = [
            (S::Assigned, Direction::Outbound, CallState::Dialing),
            (S::Selecting, Direction::Outbound, CallState::Dialing),
            (S::Queued, Direction::Inbound, CallState::Ringing),
            (S::Ringing, Direction::Inbound, CallState::Ringing),
            (S::Connected, Direction::Inbound, CallState::Connected),
            (S::OnHold, Direction::Outbound, CallState::OnHold),
            (S::WrapUp, Direction::Inbound, CallState::WrapUp),
            (S::Finished, Direction::Inbound, CallState::Ended),
            (S::Missed, Direction::Inbound, CallState::Ended),
            (S::Abandoned, Direction::Inbound, CallState::Ended),
        ];
        for (status, direction, want) in rows {
            assert_eq!(
                status.call_state(direction),
                want,
                "{status:?} {direction:?}"
            );
            assert_eq!(SessionStatus::parse(status.as_str()), Some(status));
        }
    }

    #[test]
    fn an_unfinished_end_says_why_and_crm_events_leave_the_call_alone() {
        let mut body = with(&["event_type"], json!("call.missed"));
        body["session"]["status"] = json!("missed");
        body["session"]["connected_at"] = Value::Null;
        let webhook = decode(body.to_string().as_bytes()).map_err(|e| e.0);
        let view = webhook.ok().and_then(|w| w.call_view());
        assert_eq!(
            view.map(|v| (v.state, v.end_reason)),
            Some((CallState::Ended, Some("missed".into())))
        );

        let mut body = with(&["event_type"], json!("call.csat"));
        body["csat"] = json!({"rating": 4});
        let webhook = decode(body.to_string().as_bytes()).map_err(|e| e.0);
        assert_eq!(webhook.map(|w| w.call_view()), Ok(None));

        let mut body = with(&["event_type"], json!("chat.offered"));
        body["session"]["type"] = json!("chat");
        body["session"]["status"] = json!("ringing");
        let view = decode(body.to_string().as_bytes())
            .ok()
            .and_then(|w| w.call_view());
        assert_eq!(
            view.map(|v| (v.channel, v.state, v.number)),
            Some((Channel::Chat, CallState::Ringing, None)),
            "a chat's end user is not a number to dial"
        );
    }

    #[test]
    fn an_outbound_call_waiting_for_the_agent_needs_the_agent() {
        let mut body = with(&["event_type"], json!("call.assigned"));
        body["session"]["status"] = json!("selecting");
        body["session"]["direction"] = json!("outbound");
        let view = decode(body.to_string().as_bytes())
            .ok()
            .and_then(|w| w.call_view());
        assert_eq!(
            view.map(|v| (v.state, v.needs_agent)),
            Some((CallState::Dialing, true))
        );
        let none = with(&["agent"], Value::Null);
        assert!(decode(none.to_string().as_bytes()).is_ok_and(|w| w.agent.is_none()));
    }
}
