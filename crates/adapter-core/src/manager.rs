//! The CCAI Platform's Manager API call and chat resources (`GET /manager/api/v1/calls/{id}`,
//! `GET /manager/api/v1/chats/{id}`), the source of truth for a session's details, and how a
//! documented session event ([`crate::ccai_events`]) and those details become the gateway's own
//! session events ([`crate::session_webhook::SessionWebhook`]) that the agent stream and the CRM
//! rules read.
//!
//! Documented fields read (Manager API call and chat pages; Apps API call object): `id`,
//! `call_type` / `chat_type`, `status`, `lang`, `selected_menu {id, name}`, `menu_path {name}`,
//! `end_user {identifier, out_contact_id}`, `out_ticket_id`, `agent_info {id, name}`,
//! `rating`, `has_feedback`, `recording_url`, `voicemail_reason`, `queue_duration`,
//! `call_duration` / `chat_duration`, `hold_duration`, `connected_at`, `ends_at`. The documented
//! model is shown inside an array, so a one-element array is read as well as an object. Unknown
//! keys are ignored.
//!
//! **Assumed**: how `call_type` / `chat_type` values name where a session came from (the pages
//! show "Voice Outbound (API)", "Voice Inbound (API)", "Voice Inbound (App)", "Messaging Inbound
//! (App Chat)"): `Outbound` → placed by an agent, `(App` → the Mobile SDK, `(Web` → the Web SDK,
//! any other inbound call → the IVR; and the spelling of the multi-word voicemail statuses
//! (`voicemail received` / `voicemail_received`, both read). See [`origin_of`].

use serde::Deserialize;
use serde_json::Value;

use crate::{
    agent_events::{Channel, Direction},
    ccai_events::{SessionEvent, Stage},
    iso_time::parse_utc_ms,
    session_webhook::{
        Agent, CallbackOf, CallbackReason, CrmFacts, Detail, EventKind, Menu, Origin, Session,
        SessionStatus, SessionWebhook,
    },
};

/// What the Manager API says of one call or chat.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct SessionDetails {
    /// `call_type` or `chat_type`, as given.
    pub session_type: Option<String>,
    /// Lower-cased, spaces as `_` (`voicemail_received`).
    pub status: Option<String>,
    pub lang: Option<String>,
    pub menu: Option<Menu>,
    pub menu_path: Option<String>,
    pub end_user_identifier: Option<String>,
    /// The CRM conversation the platform knows for it (`out_ticket_id`).
    pub out_ticket_id: Option<String>,
    /// The assigned agent (`agent_info.id`).
    pub agent_id: Option<i64>,
    pub rating: Option<u8>,
    pub has_feedback: bool,
    pub recording_url: Option<String>,
    pub voicemail_reason: Option<String>,
    pub queue_seconds: Option<u32>,
    pub duration_seconds: Option<u32>,
    pub hold_seconds: Option<u32>,
    pub connected_at_ms: Option<i64>,
    pub ends_at_ms: Option<i64>,
    /// The simulator's extension (`x_extension`), read only when the gateway is told to.
    pub extension: Option<ExtensionFacts>,
}

/// What the simulator's extension adds to a call or chat resource: facts the public API does
/// not document. Never read from a real tenant (`--ccai-extension` is off there).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ExtensionFacts {
    pub origin: Option<Origin>,
    pub custom_data: Vec<crate::session_webhook::CustomDatum>,
    /// The platform id of the call this one calls back, and why.
    pub callback_of: Option<(String, CallbackReason)>,
    pub phone: Option<String>,
    pub email: Option<String>,
    pub name: Option<String>,
}

#[derive(Deserialize)]
struct WireExtension {
    #[serde(default)]
    origin: Option<String>,
    #[serde(default)]
    custom_data: Option<serde_json::Map<String, Value>>,
    #[serde(default)]
    callback_of: Option<WireCallbackOf>,
    #[serde(default)]
    end_user: Option<WireExtensionUser>,
}

#[derive(Deserialize)]
struct WireCallbackOf {
    #[serde(default)]
    id: Option<Value>,
    #[serde(default)]
    reason: Option<String>,
}

#[derive(Deserialize)]
struct WireExtensionUser {
    #[serde(default)]
    phone: Option<String>,
    #[serde(default)]
    email: Option<String>,
    #[serde(default)]
    name: Option<String>,
}

fn extension_facts(value: Value) -> Result<ExtensionFacts, String> {
    let wire: WireExtension =
        serde_json::from_value(value).map_err(|e| format!("x_extension: {e}"))?;
    let origin = match wire.origin.as_deref() {
        None => None,
        Some("ivr") => Some(Origin::Ivr),
        Some("mobile_sdk") => Some(Origin::MobileSdk),
        Some("web_sdk") => Some(Origin::WebSdk),
        Some("agent") => Some(Origin::Agent),
        Some(_) => {
            return Err("x_extension.origin is not ivr, mobile_sdk, web_sdk or agent".into())
        }
    };
    let callback_of = match wire.callback_of {
        None => None,
        Some(of) => {
            let id = match of.id {
                Some(Value::Number(n)) => n.to_string(),
                Some(Value::String(s)) if !s.is_empty() && s.len() <= 64 => s,
                _ => return Err("x_extension.callback_of.id is missing".into()),
            };
            let reason =
                match of.reason.as_deref() {
                    Some("hang_up_and_call_back") => CallbackReason::HangUpAndCallBack,
                    Some("call_back") => CallbackReason::CallBack,
                    _ => return Err(
                        "x_extension.callback_of.reason is not hang_up_and_call_back or call_back"
                            .into(),
                    ),
                };
            Some((id, reason))
        }
    };
    let user = wire.end_user;
    let email = crate::session_webhook::email_text(
        user.as_ref().and_then(|u| u.email.clone()),
        "x_extension.end_user.email",
    )
    .map_err(|e| e.0)?;
    Ok(ExtensionFacts {
        origin,
        custom_data: crate::session_webhook::custom_data(wire.custom_data).map_err(|e| e.0)?,
        callback_of,
        phone: bounded(user.as_ref().and_then(|u| u.phone.clone()), 32),
        email,
        name: bounded(user.and_then(|u| u.name), 100),
    })
}

#[derive(Deserialize)]
struct WireDetails {
    #[serde(default)]
    id: Option<Value>,
    #[serde(default, alias = "chat_type")]
    call_type: Option<String>,
    #[serde(default)]
    status: Option<String>,
    #[serde(default)]
    lang: Option<String>,
    #[serde(default)]
    selected_menu: Option<WireMenu>,
    #[serde(default)]
    menu_path: Option<WireMenuPath>,
    #[serde(default)]
    end_user: Option<WireEndUser>,
    #[serde(default)]
    out_ticket_id: Option<Value>,
    #[serde(default)]
    agent_info: Option<WireAgentInfo>,
    #[serde(default)]
    rating: Option<Value>,
    #[serde(default)]
    has_feedback: Option<bool>,
    #[serde(default)]
    recording_url: Option<String>,
    #[serde(default)]
    voicemail_reason: Option<String>,
    #[serde(default)]
    queue_duration: Option<Value>,
    #[serde(default, alias = "chat_duration")]
    call_duration: Option<Value>,
    #[serde(default)]
    hold_duration: Option<Value>,
    #[serde(default)]
    connected_at: Option<String>,
    #[serde(default)]
    ends_at: Option<String>,
    #[serde(default)]
    x_extension: Option<Value>,
}

#[derive(Deserialize)]
struct WireMenu {
    #[serde(default)]
    id: Option<i64>,
    #[serde(default)]
    name: Option<String>,
}

#[derive(Deserialize)]
struct WireMenuPath {
    #[serde(default)]
    name: Option<String>,
}

#[derive(Deserialize)]
struct WireEndUser {
    #[serde(default)]
    identifier: Option<String>,
}

#[derive(Deserialize)]
struct WireAgentInfo {
    #[serde(default)]
    id: Option<i64>,
}

fn bounded(value: Option<String>, max: usize) -> Option<String> {
    let value = value?;
    let value = value.trim();
    (!value.is_empty() && value.chars().count() <= max && !value.chars().any(char::is_control))
        .then(|| value.to_owned())
}

fn whole_seconds(value: Option<Value>) -> Option<u32> {
    let seconds = match value? {
        Value::Number(n) => n.as_f64()?,
        Value::String(s) => s.trim().parse().ok()?,
        _ => return None,
    };
    (seconds.is_finite() && (0.0..=86_400.0).contains(&seconds)).then_some(seconds as u32)
}

fn http_url(value: Option<String>) -> Option<String> {
    bounded(value, 2048).filter(|u| u.starts_with("https://") || u.starts_with("http://"))
}

/// Decodes a Manager API call or chat resource. Strict only about being a JSON object (or an
/// array holding the session `id`) whose fields have their documented types; every field is
/// optional and an out-of-range one is left out. `extension` reads the simulator's
/// `x_extension` too.
pub fn decode_details(body: &[u8], id: &str, extension: bool) -> Result<SessionDetails, String> {
    let value: Value = serde_json::from_slice(body)
        .map_err(|e| format!("the Manager API answered something that is not JSON: {e}"))?;
    let value = match value {
        Value::Array(items) => items
            .into_iter()
            .find(|item| match &item["id"] {
                Value::Number(n) => n.to_string() == id,
                Value::String(s) => s == id,
                _ => false,
            })
            .ok_or_else(|| format!("the Manager API's answer does not hold session {id}"))?,
        Value::Object(map) => Value::Object(map),
        _ => return Err("the Manager API's answer is not a call or chat object".into()),
    };
    let wire: WireDetails = serde_json::from_value(value)
        .map_err(|e| format!("the Manager API's call or chat does not decode: {e}"))?;
    let _ = wire.id;
    let extension = match wire.x_extension.filter(|_| extension) {
        Some(value) => Some(extension_facts(value)?),
        None => None,
    };
    Ok(SessionDetails {
        extension,
        session_type: bounded(wire.call_type, 100),
        status: bounded(wire.status, 64).map(|s| s.to_lowercase().replace(' ', "_")),
        lang: bounded(wire.lang, 16),
        menu: wire.selected_menu.and_then(|m| {
            Some(Menu {
                id: m.id.filter(|id| *id > 0)?,
                name: bounded(m.name, 100)?,
            })
        }),
        menu_path: wire.menu_path.and_then(|p| bounded(p.name, 256)),
        end_user_identifier: wire.end_user.and_then(|u| bounded(u.identifier, 256)),
        out_ticket_id: match wire.out_ticket_id {
            Some(Value::String(s)) => bounded(Some(s), 256),
            Some(Value::Number(n)) => Some(n.to_string()),
            _ => None,
        },
        agent_id: wire.agent_info.and_then(|a| a.id).filter(|id| *id > 0),
        rating: match wire.rating {
            Some(Value::Number(n)) => n.as_u64(),
            Some(Value::String(s)) => s.trim().parse().ok(),
            _ => None,
        }
        .and_then(|r| u8::try_from(r).ok())
        .filter(|r| (1..=5).contains(r)),
        has_feedback: wire.has_feedback.unwrap_or(false),
        recording_url: http_url(wire.recording_url),
        voicemail_reason: bounded(wire.voicemail_reason, 100),
        queue_seconds: whole_seconds(wire.queue_duration),
        duration_seconds: whole_seconds(wire.call_duration),
        hold_seconds: whole_seconds(wire.hold_duration),
        connected_at_ms: wire.connected_at.as_deref().and_then(parse_utc_ms),
        ends_at_ms: wire.ends_at.as_deref().and_then(parse_utc_ms),
    })
}

/// Where a session came from, from its `call_type` / `chat_type` (assumed mapping, see the
/// module's doc).
pub fn origin_of(session_type: &str, channel: Channel) -> (Origin, Direction) {
    let t = session_type.to_ascii_lowercase();
    if t.contains("outbound") {
        return (Origin::Agent, Direction::Outbound);
    }
    let origin = if t.contains("(app") || t.contains("mobile") {
        Origin::MobileSdk
    } else if t.contains("web") || channel == Channel::Chat {
        Origin::WebSdk
    } else {
        Origin::Ivr
    };
    (origin, Direction::Inbound)
}

impl SessionDetails {
    /// Whether the session is a voicemail (its status, or a voicemail reason).
    pub fn is_voicemail(&self) -> bool {
        self.status
            .as_deref()
            .is_some_and(|s| s.starts_with("voicemail"))
            || self
                .voicemail_reason
                .as_deref()
                .is_some_and(|r| r != "not_voicemail")
    }
}

/// What the gateway knows of a session beyond the platform's event.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Known {
    /// The gateway's own id for the session.
    pub id: i64,
    /// The agent's email, from the agent directory.
    pub agent_email: Option<String>,
    /// Set when the gateway placed the call itself (click-to-call).
    pub direction: Option<Direction>,
    /// Whether an agent was ever assigned (an earlier event said so).
    pub was_assigned: bool,
    /// The call this one calls back, by the gateway's id (from the extension's facts).
    pub callback_of: Option<CallbackOf>,
}

/// The gateway's own session events for one documented event: what the agent's adapter shows
/// and what the CRM rules act on. `details` is the Manager API's resource when the stage needs
/// it ([`Stage::needs_details`]); without it the events carry what the platform's event does.
pub fn internal_events(
    event: &SessionEvent,
    details: Option<&SessionDetails>,
    known: &Known,
) -> Vec<SessionWebhook> {
    let stage = event.stage();
    let (origin, typed_direction) = details
        .and_then(|d| d.session_type.as_deref())
        .map(|t| origin_of(t, event.channel))
        .map_or((None, None), |(o, d)| (Some(o), Some(d)));
    let direction = known
        .direction
        .or(typed_direction)
        .unwrap_or(Direction::Inbound);
    let agent_id = event.agent_id().or(details.and_then(|d| d.agent_id));
    let assigned = known.was_assigned || agent_id.is_some();
    let voicemail = details.is_some_and(SessionDetails::is_voicemail);

    let mut kinds: Vec<(EventKind, SessionStatus)> = Vec::new();
    match stage {
        Stage::Unknown | Stage::Started | Stage::Routing => {}
        // The agent accepted: for the CRM that is the call answered (the conversation opens
        // and is assigned then, with the details read at this stage).
        Stage::Assigned => match direction {
            Direction::Inbound => {
                kinds.push((EventKind::Offered, SessionStatus::Ringing));
                kinds.push((EventKind::Connected, SessionStatus::Connected));
            }
            Direction::Outbound => kinds.push((EventKind::Assigned, SessionStatus::Assigned)),
        },
        // Media up: nothing the CRM rules did not do at assignment.
        Stage::Active => {}
        Stage::Ended if voicemail => kinds.push((EventKind::Voicemail, SessionStatus::Voicemail)),
        Stage::Ended if !assigned && direction == Direction::Inbound => {
            kinds.push((EventKind::Abandoned, SessionStatus::Abandoned))
        }
        Stage::Ended => kinds.push((EventKind::Ended, SessionStatus::WrapUp)),
        Stage::Final => kinds.push((EventKind::WrapUpEnded, SessionStatus::Finished)),
    }
    let details_ready = matches!(stage, Stage::Ended | Stage::Final) && !voicemail;
    if let Some(d) = details.filter(|_| details_ready && assigned) {
        if d.recording_url.is_some() && event.channel == Channel::Voice {
            kinds.push((EventKind::RecordingReady, SessionStatus::Finished));
        }
        if d.rating.is_some() && stage == Stage::Final {
            kinds.push((EventKind::Csat, SessionStatus::Finished));
        }
    }

    let end_user = event
        .dn
        .clone()
        .or_else(|| details.and_then(|d| d.end_user_identifier.clone()));
    let extension = details
        .and_then(|d| d.extension.clone())
        .unwrap_or_default();
    let origin = extension.origin.or(origin);
    let crm = CrmFacts {
        origin,
        menu: details.and_then(|d| d.menu.clone()),
        menu_path: details
            .and_then(|d| d.menu_path.clone())
            .or_else(|| (!event.queue_path.is_empty()).then(|| event.queue_path.join(" > "))),
        lang: details.and_then(|d| d.lang.clone()),
        phone: extension.phone.clone(),
        email: extension.email.clone(),
        name: extension.name.clone(),
        queue_seconds: details.and_then(|d| d.queue_seconds),
        call_seconds: details.and_then(|d| d.duration_seconds),
        hold_seconds: details.and_then(|d| d.hold_seconds),
        recording_url: details.and_then(|d| d.recording_url.clone()),
        custom_data: extension.custom_data.clone(),
        callback_of: known.callback_of,
    };
    let agent = agent_id.map(|id| Agent {
        id: Some(id),
        email: known.agent_email.clone(),
        status: None,
        next_status: None,
    });
    kinds
        .into_iter()
        .map(|(kind, status)| SessionWebhook {
            event_id: format!("{}/{}", event.event_id, kind.as_str()),
            channel: event.channel,
            kind,
            occurred_at_ms: event.timestamp_ms,
            session: Session {
                channel: event.channel,
                id: known.id,
                platform_id: event.session_id.clone(),
                status,
                direction,
                end_user: end_user.clone(),
                conversation_id: details.and_then(|d| d.out_ticket_id.clone()),
                connected_at_ms: event
                    .connected_at_ms
                    .or(details.and_then(|d| d.connected_at_ms)),
                ended_at_ms: event.ends_at_ms.or(details.and_then(|d| d.ends_at_ms)),
                muted: false,
                end_reason: match status {
                    SessionStatus::Abandoned => Some("abandoned".into()),
                    SessionStatus::Voicemail => Some("voicemail".into()),
                    _ => None,
                },
                crm: crm.clone(),
            },
            agent: agent.clone(),
            detail: match kind {
                EventKind::Voicemail => match details.and_then(|d| d.recording_url.clone()) {
                    Some(recording_url) => Detail::Voicemail { recording_url },
                    None => Detail::None,
                },
                EventKind::Csat => Detail::Csat {
                    rating: details.and_then(|d| d.rating).unwrap_or(1),
                    comment: None,
                },
                _ => Detail::None,
            },
        })
        // A voicemail without its recording is not ready for the rules yet.
        .filter(|w| !(w.kind == EventKind::Voicemail && w.detail == Detail::None))
        .collect()
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::ccai_events::decode_batch;

    fn events() -> Vec<SessionEvent> {
        let body = json!({"count": 6, "events": crate::ccai_events::examples::lifecycle()});
        decode_batch(body.to_string().as_bytes(), Channel::Voice)
            .unwrap_or_default()
            .into_iter()
            .flatten()
            .collect()
    }

    fn details(extra: Value) -> SessionDetails {
        let mut call = json!({"id": 846802, "call_type": "Voice Inbound (API)", "status": "finished",
            "lang": "fr", "selected_menu": {"id": 12, "name": "Billing", "parent_id": 3},
            "menu_path": {"name": "Support > Billing", "items_count": 2},
            "end_user": {"id": 9, "identifier": "+14155552671", "out_contact_id": "c-1"},
            "agent_info": {"id": 101, "name": "Ada Lovelace"}, "queue_duration": 12,
            "call_duration": 300, "hold_duration": 5, "rating": null, "has_feedback": false,
            "recording_url": null, "voicemail_reason": "not_voicemail", "brand_new": [1]});
        if let (Some(call), Value::Object(extra)) = (call.as_object_mut(), extra) {
            call.extend(extra);
        }
        decode_details(json!([call]).to_string().as_bytes(), "846802", false)
            .unwrap_or_else(|e| panic!("{e}"))
    }

    fn kinds(
        event: &SessionEvent,
        details: Option<&SessionDetails>,
        known: &Known,
    ) -> Vec<&'static str> {
        internal_events(event, details, known)
            .iter()
            .map(|w| w.kind.as_str())
            .collect()
    }

    #[test]
    fn the_documented_fields_are_read_and_the_rest_ignored() {
        let d = details(json!({}));
        assert_eq!(d.lang.as_deref(), Some("fr"));
        assert_eq!(
            d.menu,
            Some(Menu {
                id: 12,
                name: "Billing".into()
            })
        );
        assert_eq!(d.menu_path.as_deref(), Some("Support > Billing"));
        assert_eq!(d.agent_id, Some(101));
        assert_eq!(
            (d.queue_seconds, d.duration_seconds, d.hold_seconds),
            (Some(12), Some(300), Some(5))
        );
        assert!(!d.is_voicemail());
        assert!(decode_details(b"[]", "1", false).is_err());
        assert!(decode_details(b"\"x\"", "1", false).is_err());
        assert!(decode_details(b"<html>", "1", false).is_err());
        let odd = decode_details(
            br#"{"rating": 9, "recording_url": "file:///etc/passwd", "lang": 3}"#,
            "1",
            false,
        );
        assert!(odd.is_err(), "a wrong type is refused, not misread");
        let odd = decode_details(
            br#"{"rating": 9, "recording_url": "file:///etc/passwd"}"#,
            "1",
            false,
        )
        .unwrap_or_default();
        assert_eq!((odd.rating, odd.recording_url), (None, None));
    }

    #[test]
    fn an_answered_inbound_call_is_answered_when_assigned_then_ended_and_wrapped_up() {
        let events = events();
        let known = Known {
            id: 5,
            agent_email: Some("ada@example.com".into()),
            ..Known::default()
        };
        let d = details(json!({}));
        let got: Vec<Vec<&str>> = events
            .iter()
            .map(|e| kinds(e, e.stage().needs_details().then_some(&d), &known))
            .collect();
        assert_eq!(
            got,
            [
                vec![],
                vec![],
                vec!["offered", "connected"],
                vec![],
                vec!["ended"],
                vec!["wrap_up_ended"]
            ]
        );
        let ended = &internal_events(&events[4], Some(&d), &known)[0];
        assert_eq!(ended.session.id, 5);
        assert_eq!(ended.session.reference(), "call-846802bf90d1");
        assert_eq!(ended.session.crm.origin, Some(Origin::Ivr));
        assert_eq!(ended.session.crm.lang.as_deref(), Some("fr"));
        assert_eq!(ended.session.crm.call_seconds, Some(300));
        assert_eq!(ended.session.end_user.as_deref(), Some("+14155552671"));
        assert_eq!(
            ended.agent.as_ref().and_then(|a| a.email.as_deref()),
            Some("ada@example.com")
        );
    }

    #[test]
    fn the_recording_and_the_rating_arrive_with_the_late_reads() {
        let events = events();
        let known = Known {
            id: 5,
            was_assigned: true,
            ..Known::default()
        };
        let d = details(json!({"recording_url": "https://tenant.example/rec/1.wav", "rating": 4}));
        assert_eq!(
            kinds(&events[4], Some(&d), &known),
            ["ended", "recording_ready"]
        );
        assert_eq!(
            kinds(&events[5], Some(&d), &known),
            ["wrap_up_ended", "recording_ready", "csat"]
        );
    }

    #[test]
    fn a_call_nobody_took_is_abandoned_and_a_voicemail_waits_for_its_recording() {
        let events = events();
        let started = &events[0];
        let mut ended = events[4].clone();
        ended.agent = None;
        ended.initiator = None;
        let known = Known {
            id: 5,
            ..Known::default()
        };
        let _ = started;
        assert_eq!(
            kinds(&ended, Some(&details(json!({"agent_info": null}))), &known),
            ["abandoned"]
        );
        let voicemail = details(json!({"agent_info": null, "status": "Voicemail Received",
            "voicemail_reason": "no_agent_available"}));
        assert_eq!(voicemail.status.as_deref(), Some("voicemail_received"));
        assert!(kinds(&ended, Some(&voicemail), &known).is_empty());
        let with_recording = details(json!({"agent_info": null, "status": "voicemail",
            "recording_url": "https://tenant.example/vm/1.wav"}));
        assert_eq!(kinds(&ended, Some(&with_recording), &known), ["voicemail"]);
    }

    #[test]
    fn the_simulators_extension_is_read_only_when_asked() {
        let body = json!({"id": 7, "call_type": "Voice Inbound (App)", "x_extension": {
            "origin": "mobile_sdk", "end_user": {"email": "Amelie@Example.com", "name": "Amélie"},
            "custom_data": {"plan": {"label": "Plan", "value": "gold", "type": "string"}},
            "callback_of": {"id": 6, "reason": "call_back"}}})
        .to_string();
        let plain = decode_details(body.as_bytes(), "7", false).unwrap_or_default();
        assert_eq!(plain.extension, None, "never read from a real tenant");
        let extended = decode_details(body.as_bytes(), "7", true).unwrap_or_default();
        let facts = extended.extension.unwrap_or_default();
        assert_eq!(facts.origin, Some(Origin::MobileSdk));
        assert_eq!(facts.email.as_deref(), Some("amelie@example.com"));
        assert_eq!(facts.custom_data.len(), 1);
        assert_eq!(
            facts.callback_of,
            Some(("6".into(), CallbackReason::CallBack))
        );
        let bad = json!({"id": 7, "x_extension": {"origin": "fax"}}).to_string();
        assert!(decode_details(bad.as_bytes(), "7", true).is_err());
    }

    #[test]
    fn a_call_the_gateway_placed_is_outbound_and_call_types_name_the_origin() {
        let events = events();
        let known = Known {
            id: 5,
            direction: Some(Direction::Outbound),
            ..Known::default()
        };
        assert_eq!(kinds(&events[2], None, &known), ["assigned"]);
        for (t, channel, expected) in [
            (
                "Voice Outbound (API)",
                Channel::Voice,
                (Origin::Agent, Direction::Outbound),
            ),
            (
                "Voice Inbound (App)",
                Channel::Voice,
                (Origin::MobileSdk, Direction::Inbound),
            ),
            (
                "Messaging Inbound (App Chat)",
                Channel::Chat,
                (Origin::MobileSdk, Direction::Inbound),
            ),
            (
                "Messaging Inbound (Web Chat)",
                Channel::Chat,
                (Origin::WebSdk, Direction::Inbound),
            ),
            (
                "Voice Inbound (API)",
                Channel::Voice,
                (Origin::Ivr, Direction::Inbound),
            ),
            ("IVR", Channel::Voice, (Origin::Ivr, Direction::Inbound)),
        ] {
            assert_eq!(origin_of(t, channel), expected, "{t}");
        }
    }
}
