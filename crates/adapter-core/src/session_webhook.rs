//! CCAI Platform session webhooks ("External Session Events"), decoded and checked.
//!
//! **The wire shape is our assumption** (guess, see `docs/agent-api.md`): the platform documents
//! that it POSTs JSON on call and chat state changes, not the exact fields. Everything that knows
//! the shape is in this module, so a correction changes this file and its tests only:
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
//! `smart_action {name, result}`, `transfer {target}`, `dtmf {digits}`. Unknown keys are ignored
//! (the platform adds keys over time); unknown event types and statuses are refused.

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
}

impl EventKind {
    pub const ALL: [EventKind; 16] = [
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
        }
    }

    /// Whether the event changes the call the agent sees (the others are for CRM sync).
    pub fn changes_the_call(self) -> bool {
        !matches!(
            self,
            EventKind::Voicemail | EventKind::SmartAction | EventKind::Csat
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
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Session {
    pub channel: Channel,
    pub id: i64,
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
    Voicemail { recording_url: String },
    Csat { rating: u8, comment: Option<String> },
    SmartAction { name: String, result: String },
    Transfer { target: Option<String> },
    Dtmf { digits: Option<String> },
}

/// A decoded, checked session webhook.
#[derive(Clone, Debug, PartialEq, Eq)]
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
}

#[derive(Deserialize)]
struct WireSession {
    #[serde(rename = "type")]
    kind: Option<String>,
    id: Option<i64>,
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
}

#[derive(Deserialize)]
struct WireEndUser {
    #[serde(default)]
    identifier: Option<String>,
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
    result: Option<String>,
}

#[derive(Deserialize)]
struct WireTransfer {
    #[serde(default)]
    target: Option<String>,
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
    let id = positive_id(required(session.id, "session.id")?, "session.id")?;
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
    let end_user = match session.end_user {
        Some(user) => text(
            user.identifier,
            "session.end_user.identifier",
            MAX_TEXT_CHARS,
        )?,
        None => None,
    };
    let session = Session {
        channel: session_channel,
        id,
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
            Detail::SmartAction {
                name: required(
                    text(action.name, "smart_action.name", 100)?,
                    "smart_action.name",
                )?,
                result: required(
                    text(action.result, "smart_action.result", MAX_TEXT_CHARS)?,
                    "smart_action.result",
                )?,
            }
        }
        EventKind::Transferred => Detail::Transfer {
            target: match wire.transfer {
                Some(t) => text(t.target, "transfer.target", 100)?,
                None => None,
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
                "id a string",
                with(&["session", "id"], json!("1001")),
                "invalid type",
            ),
            (
                "id too big",
                with(&["session", "id"], json!(1e30)),
                "invalid type",
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
                Ok(Detail::SmartAction {
                    name: "Get Verification".into(),
                    result: "verified".into(),
                }),
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
