//! The CCAI Platform's **External Session Events**, as documented (Developer Settings > Session
//! Data Export > External Session Events; `contact-center/ccai-platform/docs/external-session-events`
//! and its localised versions).
//!
//! Documented: one POST carries `{"count": N, "events": [...]}`; each event has `event_id` (a
//! UUID), `timestamp` (epoch milliseconds) and an `item` that the platform enriches as the
//! session progresses. The lifecycle, read from the item's `state` and its participants:
//!
//! | stage    | `state`        | participants                       | added                          |
//! |----------|----------------|------------------------------------|--------------------------------|
//! | started  | `connected`    | external `connected`               | `call_id`, the customer's `dn` |
//! | routing  | `connected`    | external `connected`               | `queue_path_names`, `initiator`|
//! | assigned | `connected`    | agent `accepted`                   | the agent's name and id        |
//! | active   | `connected`    | agent `connected`                  | (media up)                     |
//! | ended    | `disconnected` | both `disconnected`                | `ends_at`                      |
//! | final    | `disconnected` | agent `dispositionSubmitted`       | `dispositions {code, custom_code_id, note}` |
//!
//! `connected_at` and `ends_at` are ISO 8601; `initiator` names who caused the change
//! (`agent_1`, `virtual_agent_15`).
//!
//! **Assumed** (the pages name these facts but show no example payload): participants are an
//! array `participants: [{type, status, id, name}]` whose `type` is `external` (or `end_user`)
//! or `agent`, as in the platform's QM session exports (which spell the status `state`, also
//! read); a chat's id is `chat_id` (or `call_id`); ids are strings or numbers (QM exports show a
//! call id as a hex string, a chat id as an integer; the Manager API's are integers). Everything that knows these names is in
//! this module, so a correction changes this file and its tests only.
//!
//! Decoding is strict about what the gateway relies on (the envelope, `event_id`, `timestamp`,
//! the session id, `state`) and tolerant of the rest: unknown keys are ignored; an optional field
//! of an odd type or size is cleaned, cut or left out, never a reason to refuse the event (a long
//! wrap-up note is cut to [`MAX_NOTE_CHARS`]); an unknown `state` is kept as [`Stage::Unknown`]
//! (recorded, counted, ignored by the rules). One bad event in a batch
//! does not spoil the others: [`decode_batch`] answers each event's own outcome.

use serde::Deserialize;
use serde_json::Value;

use crate::{agent_events::Channel, iso_time::parse_utc_ms};

/// Most events taken from one POST.
pub const MAX_EVENTS_PER_BATCH: usize = 500;
/// Longest session id kept.
pub const MAX_ID_CHARS: usize = 64;
/// Longest name, queue or disposition text kept.
pub const MAX_TEXT_CHARS: usize = 256;
/// Longest disposition note kept.
pub const MAX_NOTE_CHARS: usize = 2000;

/// Why a whole POST was refused (it is not the documented envelope).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct InvalidBatch(pub String);

/// Why one event of a batch was refused.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RefusedEvent {
    /// Its place in `events`, from 0.
    pub index: usize,
    /// Its `event_id`, when it had a usable one.
    pub event_id: Option<String>,
    pub reason: String,
}

/// The session's state as the item names it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ItemState {
    Connected,
    Disconnected,
    /// A state this gateway does not know yet (kept, never acted on).
    Other(String),
}

/// A participant's status.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ParticipantStatus {
    Connected,
    Accepted,
    Disconnected,
    DispositionSubmitted,
    Other(String),
}

impl ParticipantStatus {
    fn parse(text: &str) -> ParticipantStatus {
        match text {
            "connected" => ParticipantStatus::Connected,
            "accepted" => ParticipantStatus::Accepted,
            "disconnected" => ParticipantStatus::Disconnected,
            "dispositionSubmitted" | "disposition_submitted" => {
                ParticipantStatus::DispositionSubmitted
            }
            other => ParticipantStatus::Other(truncate(other)),
        }
    }
}

/// The live agent on the session.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AgentParticipant {
    /// The platform's agent id (the Manager API's `agents[].id`).
    pub id: Option<i64>,
    pub name: Option<String>,
    pub status: ParticipantStatus,
}

/// The wrap-up code the agent submitted.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Disposition {
    pub code: Option<String>,
    pub custom_code_id: Option<String>,
    pub note: Option<String>,
}

/// Where the session is in its documented lifecycle.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Stage {
    /// A state the gateway does not know: recorded, ignored by the rules.
    Unknown,
    Started,
    Routing,
    Assigned,
    Active,
    Ended,
    Final,
}

impl Stage {
    pub fn as_str(self) -> &'static str {
        match self {
            Stage::Unknown => "unknown",
            Stage::Started => "started",
            Stage::Routing => "routing",
            Stage::Assigned => "assigned",
            Stage::Active => "active",
            Stage::Ended => "ended",
            Stage::Final => "final",
        }
    }

    pub fn parse(text: &str) -> Option<Stage> {
        [
            Stage::Unknown,
            Stage::Started,
            Stage::Routing,
            Stage::Assigned,
            Stage::Active,
            Stage::Ended,
            Stage::Final,
        ]
        .into_iter()
        .find(|s| s.as_str() == text)
    }

    /// Whether the CRM rules need the session's details (the Manager API's call or chat
    /// resource) at this stage: when it is assigned, when it ends, and once it is final (the
    /// recording and the rating arrive late).
    pub fn needs_details(self) -> bool {
        matches!(self, Stage::Assigned | Stage::Ended | Stage::Final)
    }
}

/// One decoded event.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SessionEvent {
    pub event_id: String,
    /// When the platform generated it (epoch ms).
    pub timestamp_ms: i64,
    /// Call or chat: which endpoint it came to.
    pub channel: Channel,
    /// The platform's session id (`call_id`, or a chat's id), as text.
    pub session_id: String,
    pub state: ItemState,
    /// The customer's number (`dn`).
    pub dn: Option<String>,
    pub queue_path: Vec<String>,
    /// Who caused the change (`agent_1`, `virtual_agent_15`).
    pub initiator: Option<String>,
    pub agent: Option<AgentParticipant>,
    pub external: Option<ParticipantStatus>,
    pub connected_at_ms: Option<i64>,
    pub ends_at_ms: Option<i64>,
    pub disposition: Option<Disposition>,
}

impl SessionEvent {
    /// The lifecycle stage this event reports.
    pub fn stage(&self) -> Stage {
        let agent = self.agent.as_ref().map(|a| &a.status);
        match (&self.state, agent) {
            (ItemState::Other(_), _) => Stage::Unknown,
            (_, Some(ParticipantStatus::DispositionSubmitted)) => Stage::Final,
            (ItemState::Disconnected, _) => Stage::Ended,
            (ItemState::Connected, Some(ParticipantStatus::Connected)) => Stage::Active,
            (ItemState::Connected, Some(ParticipantStatus::Accepted)) => Stage::Assigned,
            (ItemState::Connected, _)
                if !self.queue_path.is_empty() || self.initiator.is_some() =>
            {
                Stage::Routing
            }
            (ItemState::Connected, _) => Stage::Started,
        }
    }

    /// The live agent's platform id: the agent participant's, else an `agent_N` initiator's.
    pub fn agent_id(&self) -> Option<i64> {
        self.agent.as_ref().and_then(|a| a.id).or_else(|| {
            self.initiator
                .as_deref()
                .and_then(|i| i.strip_prefix("agent_"))
                .and_then(|n| n.parse().ok())
                .filter(|n: &i64| *n > 0)
        })
    }

    /// How this event is stored: its own JSON plus the channel, so the CRM planner can decode
    /// it again without the request.
    pub fn source_name(&self) -> &'static str {
        channel_name(self.channel)
    }
}

pub fn channel_name(channel: Channel) -> &'static str {
    match channel {
        Channel::Voice => "call",
        Channel::Chat => "chat",
    }
}

#[derive(Deserialize)]
struct WireBatch {
    count: Option<Value>,
    events: Option<Vec<Value>>,
}

#[derive(Deserialize)]
struct WireEvent {
    event_id: Option<Value>,
    timestamp: Option<Value>,
    item: Option<WireItem>,
}

/// The item. Only the session id and `state` are relied on; every other field is read as far
/// as it is usable (see [`decode_event`]), so an odd value never costs the event.
#[derive(Deserialize)]
struct WireItem {
    #[serde(default)]
    call_id: Option<Value>,
    #[serde(default)]
    chat_id: Option<Value>,
    #[serde(default)]
    state: Option<Value>,
    #[serde(default)]
    dn: Option<Value>,
    #[serde(default)]
    queue_path_names: Option<Value>,
    #[serde(default)]
    initiator: Option<Value>,
    #[serde(default)]
    participants: Option<Value>,
    #[serde(default)]
    connected_at: Option<Value>,
    #[serde(default)]
    ends_at: Option<Value>,
    #[serde(default)]
    dispositions: Option<Value>,
}

/// A participant. The QM exports of the same platform name its status `state` and the
/// Manager API names it `status`, and carry the agent's id as `id`, `user_id` or
/// `participant_id`: all are read.
#[derive(Deserialize, Default)]
struct WireParticipant {
    #[serde(rename = "type", default)]
    kind: Option<Value>,
    #[serde(default, alias = "state")]
    status: Option<Value>,
    #[serde(default)]
    id: Option<Value>,
    #[serde(default)]
    user_id: Option<Value>,
    #[serde(default)]
    participant_id: Option<Value>,
    #[serde(default)]
    name: Option<Value>,
}

#[derive(Deserialize, Default)]
struct WireDisposition {
    #[serde(default)]
    code: Option<Value>,
    #[serde(default)]
    custom_code_id: Option<Value>,
    #[serde(default)]
    note: Option<Value>,
}

/// A text field the gateway shows or writes but does not rely on: a string or a number, its
/// control characters made spaces, cut to `max` characters; anything else (or empty) is
/// absent.
fn lenient(value: Option<Value>, max: usize) -> Option<String> {
    let text = match value? {
        Value::String(s) => s,
        Value::Number(n) => n.to_string(),
        _ => return None,
    };
    let cleaned: String = text
        .chars()
        .map(|c| if c.is_control() && c != '\n' { ' ' } else { c })
        .take(max)
        .collect();
    let trimmed = cleaned.trim();
    (!trimmed.is_empty()).then(|| trimmed.to_owned())
}

fn truncate(text: &str) -> String {
    text.chars().take(40).collect()
}

/// A bounded text without control characters; empty counts as absent.
fn text(value: Option<String>, field: &str, max: usize) -> Result<Option<String>, String> {
    let Some(value) = value else { return Ok(None) };
    let count = value.chars().count();
    if count > max {
        return Err(format!(
            "{field} is too long ({count} characters, at most {max})"
        ));
    }
    if value
        .chars()
        .any(|c| c.is_control() && c != '\n' && c != '\t')
    {
        return Err(format!("{field} contains control characters"));
    }
    let trimmed = value.trim();
    Ok((!trimmed.is_empty()).then(|| trimmed.to_owned()))
}

/// An id given as a string or a number, as text: the platform shows call ids as hex strings
/// and chat ids as integers.
fn id_text(value: Option<Value>, field: &str) -> Result<Option<String>, String> {
    match value {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) => match n.as_u64() {
            Some(n) => Ok(Some(n.to_string())),
            None => Err(format!("{field} must be a positive integer or a string")),
        },
        Some(Value::String(s)) => {
            let s = text(Some(s), field, MAX_ID_CHARS)?;
            if s.as_deref().is_some_and(|s| {
                !s.chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
            }) {
                return Err(format!(
                    "{field} may hold only letters, digits, '-' and '_'"
                ));
            }
            Ok(s)
        }
        Some(_) => Err(format!("{field} must be a string or a number")),
    }
}

/// An ISO 8601 timestamp, when it is one.
fn lenient_time(value: Option<Value>) -> Option<i64> {
    match value? {
        Value::String(t) => parse_utc_ms(t.trim()),
        _ => None,
    }
}

/// A UUID in its usual text form (the documented `event_id`), lower-cased.
fn uuid(value: Option<Value>) -> Result<String, String> {
    let text = match value {
        None | Some(Value::Null) => return Err("event_id is missing".into()),
        Some(Value::String(s)) => s,
        Some(_) => return Err("event_id must be a UUID string".into()),
    };
    let groups: Vec<&str> = text.split('-').collect();
    let shape_ok = groups.len() == 5
        && groups
            .iter()
            .zip([8, 4, 4, 4, 12])
            .all(|(g, n)| g.len() == n && g.chars().all(|c| c.is_ascii_hexdigit()));
    if !shape_ok {
        return Err(format!("event_id {:?} is not a UUID", truncate(&text)));
    }
    Ok(text.to_ascii_lowercase())
}

/// Epoch milliseconds, as the documented `timestamp`. A value that reads as seconds (before
/// 2001 in milliseconds) is refused rather than misread.
fn epoch_ms(value: Option<Value>) -> Result<i64, String> {
    let ms = match value {
        None | Some(Value::Null) => return Err("timestamp is missing".into()),
        Some(Value::Number(n)) => n
            .as_i64()
            .or_else(|| n.as_f64().filter(|f| f.is_finite()).map(|f| f as i64)),
        Some(Value::String(s)) => s.trim().parse::<i64>().ok(),
        Some(_) => None,
    }
    .ok_or("timestamp must be epoch milliseconds")?;
    // 2001-09-09 .. 2286: milliseconds, not seconds.
    if !(1_000_000_000_000..10_000_000_000_000).contains(&ms) {
        return Err("timestamp must be epoch milliseconds (13 digits)".into());
    }
    Ok(ms)
}

/// The queue names, a list (or one " > "-separated text, as some exports show it): at most
/// 20, each a usable text.
fn queue_path(value: Option<Value>) -> Vec<String> {
    let names: Vec<Value> = match value {
        Some(Value::String(s)) => s.split('>').map(|p| Value::String(p.to_owned())).collect(),
        Some(Value::Array(items)) => items,
        _ => Vec::new(),
    };
    names
        .into_iter()
        .filter_map(|name| lenient(Some(name), MAX_TEXT_CHARS))
        .take(20)
        .collect()
}

fn decode_event(value: Value, channel: Channel) -> Result<SessionEvent, (Option<String>, String)> {
    let wire: WireEvent = serde_json::from_value(value)
        .map_err(|e| (None, format!("not a session event object: {e}")))?;
    let event_id = uuid(wire.event_id).map_err(|r| (None, r))?;
    let fail = |reason: String| (Some(event_id.clone()), reason);
    let timestamp_ms = epoch_ms(wire.timestamp).map_err(fail)?;
    let item = wire.item.ok_or_else(|| fail("item is missing".into()))?;
    let (id_field, id) = match channel {
        Channel::Voice => ("item.call_id", item.call_id),
        Channel::Chat => ("item.chat_id", item.chat_id.or(item.call_id)),
    };
    let session_id = id_text(id, id_field)
        .map_err(fail)?
        .ok_or_else(|| fail(format!("{id_field} is missing")))?;
    let state = match item.state {
        None | Some(Value::Null) => return Err(fail("item.state is missing".into())),
        Some(Value::String(state)) => match state.trim() {
            "" => return Err(fail("item.state is missing".into())),
            "connected" => ItemState::Connected,
            "disconnected" => ItemState::Disconnected,
            other => ItemState::Other(truncate(other)),
        },
        Some(_) => return Err(fail("item.state must be text".into())),
    };
    // A number longer than E.164 allows is not one: left out rather than cut.
    let dn = lenient(item.dn, 64).filter(|d| d.chars().count() <= 32);
    let initiator = lenient(item.initiator, MAX_TEXT_CHARS);
    let mut agent = None;
    let mut external = None;
    let participants = match item.participants {
        Some(Value::Array(items)) => items,
        _ => Vec::new(),
    };
    for p in participants.into_iter().take(20) {
        let p: WireParticipant = serde_json::from_value(p).unwrap_or_default();
        let status = lenient(p.status, 64).map(|s| ParticipantStatus::parse(&s));
        match lenient(p.kind, 32).as_deref() {
            Some("agent") => {
                let id = match p.user_id.or(p.participant_id).or(p.id) {
                    Some(Value::Number(n)) => n.as_i64().filter(|n| *n > 0),
                    Some(Value::String(s)) => s
                        .trim()
                        .trim_start_matches("agent_")
                        .parse()
                        .ok()
                        .filter(|n: &i64| *n > 0),
                    _ => None,
                };
                // The latest agent on the list is the live one (after a transfer).
                agent = Some(AgentParticipant {
                    id,
                    name: lenient(p.name, MAX_TEXT_CHARS),
                    status: status.unwrap_or(ParticipantStatus::Other(String::new())),
                });
            }
            Some("external" | "end_user" | "customer") => external = status,
            _ => {}
        }
    }
    let disposition = match item.dispositions {
        Some(value @ Value::Object(_)) => {
            let d: WireDisposition = serde_json::from_value(value).unwrap_or_default();
            Some(Disposition {
                code: lenient(d.code, MAX_TEXT_CHARS),
                custom_code_id: lenient(d.custom_code_id, MAX_TEXT_CHARS),
                note: lenient(d.note, MAX_NOTE_CHARS),
            })
        }
        _ => None,
    };
    Ok(SessionEvent {
        timestamp_ms,
        channel,
        session_id,
        state,
        dn,
        queue_path: queue_path(item.queue_path_names),
        initiator,
        agent,
        external,
        connected_at_ms: lenient_time(item.connected_at),
        ends_at_ms: lenient_time(item.ends_at),
        disposition,
        event_id,
    })
}

/// Decodes one POST of `channel`'s endpoint: the envelope must be right, then each event is
/// decoded on its own, in order.
pub fn decode_batch(
    body: &[u8],
    channel: Channel,
) -> Result<Vec<Result<SessionEvent, RefusedEvent>>, InvalidBatch> {
    let wire: WireBatch = serde_json::from_slice(body).map_err(|e| {
        InvalidBatch(format!(
            "not the session events envelope {{\"count\", \"events\"}}: {e}"
        ))
    })?;
    let events = wire
        .events
        .ok_or_else(|| InvalidBatch("events is missing".into()))?;
    if events.len() > MAX_EVENTS_PER_BATCH {
        return Err(InvalidBatch(format!(
            "{} events in one POST, at most {MAX_EVENTS_PER_BATCH}",
            events.len()
        )));
    }
    // `count` says how many events the POST carries; a mismatch means a truncated body.
    match wire.count {
        None | Some(Value::Null) => {}
        Some(Value::Number(n)) if n.as_u64() == Some(events.len() as u64) => {}
        Some(other) => {
            return Err(InvalidBatch(format!(
                "count is {other} but events holds {}",
                events.len()
            )))
        }
    }
    Ok(events
        .into_iter()
        .enumerate()
        .map(|(index, value)| {
            decode_event(value, channel).map_err(|(event_id, reason)| RefusedEvent {
                index,
                event_id,
                reason,
            })
        })
        .collect())
}

/// Decodes one event as stored by the gateway (`{"channel", "event"}`), for the planner.
pub fn decode_stored(text: &str) -> Result<SessionEvent, String> {
    #[derive(Deserialize)]
    struct Stored {
        channel: String,
        event: Value,
    }
    let stored: Stored = serde_json::from_str(text).map_err(|e| e.to_string())?;
    let channel = match stored.channel.as_str() {
        "call" => Channel::Voice,
        "chat" => Channel::Chat,
        other => return Err(format!("unknown channel {other:?}")),
    };
    decode_event(stored.event, channel).map_err(|(_, reason)| reason)
}

/// How the gateway stores one event of a batch: the platform's own JSON, with its channel.
pub fn stored(channel: Channel, event: &Value) -> String {
    serde_json::json!({"channel": channel_name(channel), "event": event}).to_string()
}

/// Example payloads in the documented shape, for tests here and in the gateway.
pub mod examples {
    use serde_json::{json, Value};

    /// The six documented steps of one answered inbound call, as the platform enriches them.
    pub fn lifecycle() -> Vec<Value> {
        let base = json!({"call_id": "846802bf90d1", "dn": "+14155552671",
            "connected_at": "2026-11-21T16:00:00.000Z"});
        let with = |extra: Value| {
            let mut item = base.clone();
            if let (Some(item), Value::Object(extra)) = (item.as_object_mut(), extra) {
                item.extend(extra);
            }
            item
        };
        let external = |s: &str| json!({"type": "external", "status": s});
        let agent =
            |s: &str| json!({"type": "agent", "status": s, "id": 101, "name": "Ada Lovelace"});
        let items = [
            with(json!({"state": "connected", "participants": [external("connected")]})),
            with(
                json!({"state": "connected", "queue_path_names": ["Support", "Billing"],
                "initiator": "virtual_agent_15", "participants": [external("connected")]}),
            ),
            with(
                json!({"state": "connected", "queue_path_names": ["Support", "Billing"],
                "participants": [external("connected"), agent("accepted")]}),
            ),
            with(
                json!({"state": "connected", "queue_path_names": ["Support", "Billing"],
                "participants": [external("connected"), agent("connected")]}),
            ),
            with(
                json!({"state": "disconnected", "ends_at": "2026-11-21T16:05:00.000Z",
                "initiator": "agent_101",
                "participants": [external("disconnected"), agent("disconnected")]}),
            ),
            with(
                json!({"state": "disconnected", "ends_at": "2026-11-21T16:05:00.000Z",
                "participants": [external("disconnected"), agent("dispositionSubmitted")],
                "dispositions": {"code": "resolved", "custom_code_id": 7, "note": "Refund sent"}}),
            ),
        ];
        items
            .into_iter()
            .enumerate()
            .map(|(i, item)| {
                json!({"event_id": format!("5f0c6a8e-3b1d-4c2a-9e7f-0a1b2c3d4e5{i}"),
                    "timestamp": 1_795_276_800_000_i64 + i as i64 * 1000, "item": item})
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    const ID: &str = "5f0c6a8e-3b1d-4c2a-9e7f-0a1b2c3d4e5f";

    fn one(event: Value) -> Result<SessionEvent, RefusedEvent> {
        let body = json!({"count": 1, "events": [event]}).to_string();
        match decode_batch(body.as_bytes(), Channel::Voice) {
            Ok(mut events) => events.remove(0),
            Err(e) => panic!("envelope refused: {e}"),
        }
    }

    fn reason(event: Value) -> String {
        match one(event) {
            Ok(e) => panic!("accepted: {e:?}"),
            Err(refused) => refused.reason,
        }
    }

    #[test]
    fn the_six_documented_steps_read_as_the_six_stages() {
        let body = json!({"count": 6, "events": examples::lifecycle()}).to_string();
        let events = decode_batch(body.as_bytes(), Channel::Voice).unwrap_or_default();
        let stages: Vec<Stage> = events
            .iter()
            .map(|e| e.as_ref().map_or(Stage::Unknown, SessionEvent::stage))
            .collect();
        assert_eq!(
            stages,
            [
                Stage::Started,
                Stage::Routing,
                Stage::Assigned,
                Stage::Active,
                Stage::Ended,
                Stage::Final
            ]
        );
        let Some(Ok(last)) = events.last() else {
            panic!("final event refused")
        };
        assert_eq!(last.session_id, "846802bf90d1");
        assert_eq!(last.dn.as_deref(), Some("+14155552671"));
        assert_eq!(last.agent_id(), Some(101));
        assert_eq!(last.queue_path, Vec::<String>::new());
        assert_eq!(last.timestamp_ms, 1_795_276_805_000);
        assert_eq!(last.ends_at_ms, Some(1_795_277_100_000));
        assert_eq!(
            last.disposition,
            Some(Disposition {
                code: Some("resolved".into()),
                custom_code_id: Some("7".into()),
                note: Some("Refund sent".into()),
            })
        );
        let Some(Ok(routing)) = events.get(1) else {
            panic!("routing refused")
        };
        assert_eq!(routing.queue_path, ["Support", "Billing"]);
        assert_eq!(routing.initiator.as_deref(), Some("virtual_agent_15"));
        assert_eq!(routing.agent_id(), None, "a virtual agent is not an agent");
    }

    #[test]
    fn ids_may_be_strings_or_numbers_and_a_chat_has_its_own_id() {
        let mut event = examples::lifecycle().remove(0);
        event["item"]["call_id"] = json!(4242);
        assert_eq!(one(event).map(|e| e.session_id), Ok("4242".into()));
        let chat = json!({"count": 1, "events": [{"event_id": ID, "timestamp": 1_795_276_800_000_i64,
            "item": {"chat_id": 77, "state": "connected"}}]});
        let events = decode_batch(chat.to_string().as_bytes(), Channel::Chat).unwrap_or_default();
        assert!(
            matches!(events.first(), Some(Ok(e)) if e.session_id == "77" && e.channel == Channel::Chat)
        );
    }

    #[test]
    fn an_agent_initiator_names_the_agent_when_no_participant_does() {
        let event = json!({"event_id": ID, "timestamp": 1_795_276_800_000_i64,
            "item": {"call_id": "a1", "state": "disconnected", "initiator": "agent_7"}});
        assert_eq!(one(event).map(|e| e.agent_id()), Ok(Some(7)));
    }

    #[test]
    fn an_unknown_state_is_kept_as_unknown_not_refused() {
        let event = json!({"event_id": ID, "timestamp": 1_795_276_800_000_i64,
            "item": {"call_id": "a1", "state": "parked", "brand_new": {"x": 1}}});
        assert_eq!(one(event).map(|e| e.stage()), Ok(Stage::Unknown));
    }

    #[test]
    fn the_envelope_is_required() {
        for (body, expected) in [
            (json!({"event_id": ID}), "events is missing"),
            (json!([1, 2]), "not the session events envelope"),
            (
                json!({"count": 2, "events": [{}]}),
                "count is 2 but events holds 1",
            ),
            (json!({"count": "1", "events": [{}]}), "count is \"1\""),
        ] {
            match decode_batch(body.to_string().as_bytes(), Channel::Voice) {
                Ok(events) => panic!("{body} accepted: {events:?}"),
                Err(InvalidBatch(reason)) => {
                    assert!(reason.contains(expected), "{body}: {reason}")
                }
            }
        }
        let many: Vec<Value> = (0..=MAX_EVENTS_PER_BATCH).map(|_| json!({})).collect();
        let body = json!({"events": many}).to_string();
        assert!(decode_batch(body.as_bytes(), Channel::Voice).is_err());
        assert!(decode_batch(b"", Channel::Voice).is_err());
        assert!(decode_batch(b"{\"events\": []}", Channel::Voice).is_ok_and(|e| e.is_empty()));
    }

    #[test]
    fn bad_events_are_refused_each_with_its_reason() {
        let base = json!({"event_id": ID, "timestamp": 1_795_276_800_000_i64,
            "item": {"call_id": "a1", "state": "connected"}});
        let with = |path: &[&str], value: Value| {
            let mut event = base.clone();
            let mut target = &mut event;
            for key in &path[..path.len() - 1] {
                target = &mut target[*key];
            }
            target[path[path.len() - 1]] = value;
            event
        };
        let cases: Vec<(Value, &str)> = vec![
            (with(&["event_id"], Value::Null), "event_id is missing"),
            (with(&["event_id"], json!("sim-1")), "is not a UUID"),
            (with(&["event_id"], json!(12)), "must be a UUID string"),
            (with(&["timestamp"], Value::Null), "timestamp is missing"),
            (with(&["timestamp"], json!(1_795_276_800)), "13 digits"),
            (with(&["timestamp"], json!("soon")), "epoch milliseconds"),
            (with(&["item"], Value::Null), "item is missing"),
            (
                with(&["item", "call_id"], Value::Null),
                "item.call_id is missing",
            ),
            (with(&["item", "call_id"], json!(-3)), "positive integer"),
            (with(&["item", "call_id"], json!("a/../b")), "only letters"),
            (
                with(&["item", "call_id"], json!("x".repeat(65))),
                "too long",
            ),
            (
                with(&["item", "state"], Value::Null),
                "item.state is missing",
            ),
            (
                with(&["item", "state"], json!(3)),
                "item.state must be text",
            ),
            (json!("text"), "not a session event object"),
        ];
        for (event, expected) in cases {
            let got = reason(event.clone());
            assert!(
                got.contains(expected),
                "{event}: {got:?}, expected {expected:?}"
            );
        }
    }

    #[test]
    fn odd_optional_fields_are_cleaned_cut_or_left_out_never_a_refusal() {
        let mut event = examples::lifecycle().remove(5);
        let item = &mut event["item"];
        item["dn"] = json!("1".repeat(40));
        item["connected_at"] = json!("yesterday");
        item["ends_at"] = json!(12);
        item["queue_path_names"] = json!([1, "Support", {"x": 1}]);
        item["initiator"] = json!({"odd": true});
        item["dispositions"]["note"] =
            json!(format!("line one\r\nline\u{0}two{}", "x".repeat(3000)));
        item["participants"][1]["name"] = json!(["not", "a", "name"]);
        item["participants"][0] = json!("garbage");
        let event = one(event).unwrap_or_else(|r| panic!("refused: {r:?}"));
        assert_eq!(event.dn, None, "a number too long to be one is left out");
        assert_eq!((event.connected_at_ms, event.ends_at_ms), (None, None));
        assert_eq!(event.queue_path, ["1", "Support"]);
        assert_eq!(event.initiator, None);
        assert_eq!(
            event.stage(),
            Stage::Final,
            "what the gateway relies on is intact"
        );
        assert_eq!(event.agent_id(), Some(101));
        let note = event.disposition.and_then(|d| d.note).unwrap_or_default();
        assert!(note.starts_with("line one \nline two"), "{note:.40}");
        assert_eq!(note.chars().count(), MAX_NOTE_CHARS);
    }

    #[test]
    fn one_bad_event_does_not_spoil_the_batch() {
        let mut events = examples::lifecycle();
        events[1]["timestamp"] = json!("garbage");
        let body = json!({"count": 6, "events": events}).to_string();
        let decoded = decode_batch(body.as_bytes(), Channel::Voice).unwrap_or_default();
        assert_eq!(decoded.len(), 6);
        assert_eq!(decoded.iter().filter(|e| e.is_ok()).count(), 5);
        let Some(Err(refused)) = decoded.get(1) else {
            panic!("the bad event was taken")
        };
        assert_eq!(refused.index, 1);
        assert_eq!(
            refused.event_id.as_deref(),
            Some("5f0c6a8e-3b1d-4c2a-9e7f-0a1b2c3d4e51")
        );
    }

    #[test]
    fn a_stored_event_decodes_the_same() {
        let event = examples::lifecycle().remove(2);
        let decoded = one(event.clone());
        assert_eq!(
            decode_stored(&stored(Channel::Voice, &event)),
            decoded.map_err(|r| r.reason)
        );
    }

    #[test]
    fn hostile_input_never_panics() {
        let mut seed = 7u64;
        let mut rand = || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        let pieces = [
            "{",
            "}",
            "[",
            "]",
            ",",
            ":",
            "\"events\"",
            "\"count\"",
            "\"item\"",
            "\"state\"",
            "\"call_id\"",
            "1",
            "-1",
            "1e400",
            "null",
            "\"x\"",
            "\"participants\"",
            "true",
        ];
        for _ in 0..5000 {
            let len = (rand() % 24) as usize;
            let body: String = (0..len)
                .map(|_| pieces[(rand() % pieces.len() as u64) as usize])
                .collect();
            let _ = decode_batch(body.as_bytes(), Channel::Voice);
            let _ = decode_stored(&body);
        }
    }
}
