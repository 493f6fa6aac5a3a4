//! The agent event stream: what the gateway pushes to an adapter over its WebSocket. Every
//! message carries the gateway's `epoch` (which changes when its memory of past events is lost,
//! e.g. on a restart) and the agent's sequence number, so a reconnecting adapter asks for what
//! it missed (`after`) and gets either exactly that or a full snapshot.

use serde::{Deserialize, Serialize};

use crate::json_fields::{
    boolean, int, object_with, one_of, string, uint, uint32, FieldError, Fields, FromJson,
};

/// A CCAI status as the adapter shows it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatusView {
    pub id: i64,
    pub name: String,
}

/// What the gateway knows of the agent right now.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AgentState {
    pub status: Option<StatusView>,
    /// Set during a call or wrap-up; applied after.
    pub next_status: Option<StatusView>,
    /// The call or chat in progress (ringing, connected, on hold, wrap-up).
    #[serde(default)]
    pub call: Option<CallView>,
    /// The last call that ended, for "call back".
    #[serde(default)]
    pub last_call: Option<CallView>,
}

/// Voice call or chat.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Channel {
    #[default]
    Voice,
    Chat,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    Inbound,
    #[default]
    Outbound,
}

/// Where a call or chat is, as the agent sees it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CallState {
    /// Outbound: placed, not yet connected.
    #[default]
    Dialing,
    /// Inbound: offered to the agent, who can answer.
    Ringing,
    Connected,
    OnHold,
    WrapUp,
    /// Over (finished, abandoned, missed, sent to voicemail, failed).
    Ended,
}

impl CallState {
    pub fn is_over(self) -> bool {
        matches!(self, CallState::Ended)
    }
}

/// A call or chat of the agent's.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CallView {
    pub call_id: i64,
    #[serde(default)]
    pub channel: Channel,
    #[serde(default)]
    pub direction: Direction,
    #[serde(default)]
    pub state: CallState,
    /// The customer's number (E.164) for a voice call.
    #[serde(default)]
    pub number: Option<String>,
    /// The Kustomer conversation the call belongs to, when known.
    #[serde(default)]
    pub conversation_id: Option<String>,
    /// The Kustomer customer of that conversation, once the CRM sync has it (for the screen
    /// pop).
    #[serde(default)]
    pub customer_id: Option<String>,
    /// When the call connected (Unix ms): the call timer counts from here, across reloads.
    #[serde(default)]
    pub connected_at_ms: Option<i64>,
    /// When the call ended (Unix ms).
    #[serde(default)]
    pub ended_at_ms: Option<i64>,
    #[serde(default)]
    pub muted: bool,
    /// Placed, but the agent must finish it (e.g. pick an outbound number).
    #[serde(default)]
    pub needs_agent: bool,
    /// Why it ended, when it did not simply finish (missed, abandoned, voicemail, failed).
    #[serde(default)]
    pub end_reason: Option<String>,
}

impl CallView {
    /// How long the call has been (or was) connected at `now_ms`, in whole seconds.
    pub fn connected_seconds(&self, now_ms: i64) -> Option<i64> {
        let start = self.connected_at_ms?;
        let end = self.ended_at_ms.unwrap_or(now_ms);
        Some((end - start).max(0) / 1000)
    }

    /// A call that lasted under 10 seconds offers "call back" (a dropped line, a wrong turn).
    pub fn offers_call_back(&self) -> bool {
        self.state.is_over()
            && self.channel == Channel::Voice
            && self.number.is_some()
            && self
                .connected_at_ms
                .zip(self.ended_at_ms)
                .is_some_and(|(start, end)| end - start < 10_000)
    }
}

/// A call control the connected upstream offers. The public CCAI API offers none: the widget
/// shows only what is listed in the session's capabilities.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CallControl {
    Answer,
    Hold,
    Resume,
    Mute,
    Unmute,
    End,
    Transfer,
    Dtmf,
    /// End the call and place a new one to the same number.
    HangUpAndCallBack,
    /// Call again the number of a call that lasted under 10 seconds.
    CallBack,
}

impl CallControl {
    pub const ALL: [CallControl; 10] = [
        CallControl::Answer,
        CallControl::Hold,
        CallControl::Resume,
        CallControl::Mute,
        CallControl::Unmute,
        CallControl::End,
        CallControl::Transfer,
        CallControl::Dtmf,
        CallControl::HangUpAndCallBack,
        CallControl::CallBack,
    ];

    /// The path segment of `POST /api/v1/calls/{id}/{action}`.
    pub fn as_str(self) -> &'static str {
        match self {
            CallControl::Answer => "answer",
            CallControl::Hold => "hold",
            CallControl::Resume => "resume",
            CallControl::Mute => "mute",
            CallControl::Unmute => "unmute",
            CallControl::End => "end",
            CallControl::Transfer => "transfer",
            CallControl::Dtmf => "dtmf",
            CallControl::HangUpAndCallBack => "hang_up_and_call_back",
            CallControl::CallBack => "call_back",
        }
    }

    pub fn parse(text: &str) -> Option<CallControl> {
        CallControl::ALL.into_iter().find(|c| c.as_str() == text)
    }

    /// Whether this control makes sense for `call` (the widget offers only these).
    pub fn applies_to(self, call: &CallView) -> bool {
        use CallState::*;
        let voice = call.channel == Channel::Voice;
        match self {
            CallControl::Answer => call.state == Ringing,
            CallControl::Hold => voice && call.state == Connected,
            CallControl::Resume => voice && call.state == OnHold,
            CallControl::Mute => voice && call.state == Connected && !call.muted,
            CallControl::Unmute => voice && matches!(call.state, Connected | OnHold) && call.muted,
            CallControl::End => matches!(call.state, Dialing | Connected | OnHold),
            CallControl::Transfer | CallControl::Dtmf => voice && call.state == Connected,
            CallControl::HangUpAndCallBack => {
                voice && call.number.is_some() && matches!(call.state, Connected | OnHold)
            }
            CallControl::CallBack => call.offers_call_back(),
        }
    }
}

/// Something that happened to the agent.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum AgentEvent {
    StatusChanged {
        status: Option<StatusView>,
        next_status: Option<StatusView>,
    },
    /// A call or chat appeared or changed; the whole call is sent each time.
    Call(CallView),
}

impl AgentEvent {
    /// The state after this event.
    pub fn apply(&self, state: &mut AgentState) {
        match self {
            AgentEvent::StatusChanged {
                status,
                next_status,
            } => {
                state.status = status.clone();
                state.next_status = next_status.clone();
            }
            AgentEvent::Call(call) => {
                let mut call = call.clone();
                // The conversation the CRM sync resolved (it comes with its customer) stays the
                // call's, whatever later reports of the platform say; otherwise a report without
                // a conversation keeps the one known.
                let known = [state.call.as_ref(), state.last_call.as_ref()]
                    .into_iter()
                    .flatten()
                    .find(|c| c.call_id == call.call_id);
                if let Some(known) = known {
                    if call.customer_id.is_none() && known.customer_id.is_some() {
                        call.customer_id = known.customer_id.clone();
                        call.conversation_id = known.conversation_id.clone();
                    } else if call.conversation_id.is_none() {
                        call.conversation_id = known.conversation_id.clone();
                    }
                }
                if call.state.is_over() {
                    if state
                        .call
                        .as_ref()
                        .is_some_and(|c| c.call_id == call.call_id)
                    {
                        state.call = None;
                    }
                    state.last_call = Some(call);
                } else {
                    state.call = Some(call);
                }
            }
        }
    }
}

/// A message on the stream.
// A snapshot is larger than the other messages; each lives only while it is encoded or
// decoded, so boxing it would buy nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum StreamMessage {
    /// The whole state as of `seq`: sent first when the missed events are not all available.
    Snapshot {
        epoch: u64,
        seq: u64,
        state: AgentState,
    },
    /// One event, numbered.
    Event {
        epoch: u64,
        seq: u64,
        event: AgentEvent,
    },
    /// Nothing happened; the connection is alive at `seq`.
    Heartbeat { epoch: u64, seq: u64 },
    /// How many browsers have this agent's adapter open (distinct browsers, not tabs): more
    /// than one, and statuses and screen pops follow only one of them. Sent when it changes.
    Presence { browsers: u32 },
}

/// The client's first message on the stream: who it is (the session token, which never goes
/// in the URL, where proxies and logs keep it) and where it resumes. The gateway waits
/// [`AUTH_WITHIN_MS`] for it.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StreamAuth {
    /// Always `"auth"`; read, not assumed (serde's `tag` on a struct does not check it).
    #[serde(rename = "type")]
    kind: AuthKind,
    pub token: String,
    /// Resume: the epoch and the last sequence number the client has seen.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub epoch: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub after: Option<u64>,
    /// The adapter's browser (a random id it keeps, shared by its tabs).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub browser: Option<String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
enum AuthKind {
    Auth,
}

impl crate::json_text::ToJson for StreamAuth {
    fn to_json(&self) -> String {
        let mut auth = crate::json_text::Object::new();
        auth.text("type", "auth").text("token", &self.token);
        if let Some(epoch) = self.epoch {
            auth.uint("epoch", epoch);
        }
        if let Some(after) = self.after {
            auth.uint("after", after);
        }
        if let Some(browser) = &self.browser {
            auth.text("browser", browser);
        }
        auth.finish()
    }
}

impl StreamAuth {
    pub fn new(token: String, resume: Option<(u64, u64)>, browser: Option<String>) -> StreamAuth {
        StreamAuth {
            kind: AuthKind::Auth,
            token,
            epoch: resume.map(|(epoch, _)| epoch),
            after: resume.map(|(_, after)| after),
            browser,
        }
    }
}

impl std::fmt::Debug for StreamAuth {
    /// Without the token, which must not reach a log.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StreamAuth")
            .field("token", &"***")
            .field("epoch", &self.epoch)
            .field("after", &self.after)
            .field("browser", &self.browser)
            .finish()
    }
}

/// How long the gateway waits for [`StreamAuth`] after the upgrade, in milliseconds.
pub const AUTH_WITHIN_MS: u64 = 5_000;

/// Largest message (and frame) the gateway reads from a stream's client: the auth message
/// with room to spare; anything larger closes the stream with [`close::TOO_BIG`].
pub const MAX_CLIENT_MESSAGE_BYTES: usize = 4 * 1024;

/// The close codes of the stream, and what the adapter does on each.
pub mod close {
    /// The session ended (signed out, expired, rotated elsewhere): refresh, or sign out.
    pub const SESSION_ENDED: u16 = 4001;
    /// No valid auth message in time, or the first message was not one: reconnect.
    pub const AUTH_REQUIRED: u16 = 4002;
    /// Too many streams open for this agent or from this address: tell the agent, and wait
    /// long before trying again.
    pub const TOO_MANY_STREAMS: u16 = 4029;
    /// The gateway cannot read sessions now (its store fails): reconnect.
    pub const UNAVAILABLE: u16 = 1011;
    /// The gateway stops (and will be back): reconnect.
    pub const RESTARTING: u16 = 1012;
    /// The client sent a message over [`super::MAX_CLIENT_MESSAGE_BYTES`].
    pub const TOO_BIG: u16 = 1009;
}

/// Decodes a stream message: the same result as the derived `Deserialize`, read field by field
/// from one parsed JSON value ([`crate::json_fields`]), which is much less code in the widget
/// (it decodes every message it receives with this) than the derived decoders.
pub fn decode_message(text: &str) -> Result<StreamMessage, FieldError> {
    let value = crate::json_text::parse(text)?;
    let f = Fields::of(&value, "")?;
    let kind = f.req(
        "type",
        one_of(&["snapshot", "event", "heartbeat", "presence"]),
    )?;
    if kind == 3 {
        return Ok(StreamMessage::Presence {
            browsers: f.req("browsers", uint32)?,
        });
    }
    let (epoch, seq) = (f.req("epoch", uint)?, f.req("seq", uint)?);
    Ok(match kind {
        0 => StreamMessage::Snapshot {
            epoch,
            seq,
            state: f.req("state", object_with("state", agent_state))?,
        },
        1 => StreamMessage::Event {
            epoch,
            seq,
            event: f.req("event", object_with("event", agent_event))?,
        },
        _ => StreamMessage::Heartbeat { epoch, seq },
    })
}

fn status_view(f: Fields<'_>) -> Result<StatusView, FieldError> {
    Ok(StatusView {
        id: f.req("id", int)?,
        name: f.req("name", string)?,
    })
}

impl FromJson for StatusView {
    fn from_fields(f: Fields<'_>) -> Result<Self, FieldError> {
        status_view(f)
    }
}

fn agent_state(f: Fields<'_>) -> Result<AgentState, FieldError> {
    Ok(AgentState {
        status: f.opt("status", object_with("status", status_view))?,
        next_status: f.opt("next_status", object_with("next_status", status_view))?,
        call: f.opt("call", object_with("call", call_view))?,
        last_call: f.opt("last_call", object_with("last_call", call_view))?,
    })
}

fn agent_event(f: Fields<'_>) -> Result<AgentEvent, FieldError> {
    Ok(match f.req("kind", one_of(&["status_changed", "call"]))? {
        0 => AgentEvent::StatusChanged {
            status: f.opt("status", object_with("status", status_view))?,
            next_status: f.opt("next_status", object_with("next_status", status_view))?,
        },
        _ => AgentEvent::Call(call_view(f)?),
    })
}

fn call_view(f: Fields<'_>) -> Result<CallView, FieldError> {
    const CHANNELS: [Channel; 2] = [Channel::Voice, Channel::Chat];
    const DIRECTIONS: [Direction; 2] = [Direction::Inbound, Direction::Outbound];
    const STATES: [CallState; 6] = [
        CallState::Dialing,
        CallState::Ringing,
        CallState::Connected,
        CallState::OnHold,
        CallState::WrapUp,
        CallState::Ended,
    ];
    let pick = |key: &str, names: &[&str]| -> Result<Option<usize>, FieldError> {
        f.or_default(key, |v, k| one_of(names)(v, k).map(Some))
    };
    Ok(CallView {
        call_id: f.req("call_id", int)?,
        channel: pick("channel", &["voice", "chat"])?
            .map_or_else(Channel::default, |i| CHANNELS[i]),
        direction: pick("direction", &["inbound", "outbound"])?
            .map_or_else(Direction::default, |i| DIRECTIONS[i]),
        state: pick(
            "state",
            &[
                "dialing",
                "ringing",
                "connected",
                "on_hold",
                "wrap_up",
                "ended",
            ],
        )?
        .map_or_else(CallState::default, |i| STATES[i]),
        number: f.opt("number", string)?,
        conversation_id: f.opt("conversation_id", string)?,
        customer_id: f.opt("customer_id", string)?,
        connected_at_ms: f.opt("connected_at_ms", int)?,
        ended_at_ms: f.opt("ended_at_ms", int)?,
        muted: f.or_default("muted", boolean)?,
        needs_agent: f.or_default("needs_agent", boolean)?,
        end_reason: f.opt("end_reason", string)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_auth_message_carries_the_token_and_never_prints_it() {
        let auth = StreamAuth::new("t0k3n".into(), Some((3, 9)), Some("b-1".into()));
        let text = serde_json::to_string(&auth).unwrap();
        assert_eq!(
            serde_json::from_str::<serde_json::Value>(&text).unwrap(),
            serde_json::json!({"type": "auth", "token": "t0k3n", "epoch": 3, "after": 9, "browser": "b-1"})
        );
        assert_eq!(serde_json::from_str::<StreamAuth>(&text).unwrap(), auth);
        crate::json_text::assert_writes_as_serde(&[
            auth.clone(),
            StreamAuth::new("t".into(), None, None),
            StreamAuth::new("\"quoted\"".into(), Some((0, u64::MAX)), None),
        ]);
        let bare: StreamAuth = serde_json::from_str(r#"{"type":"auth","token":"x"}"#).unwrap();
        assert_eq!((bare.epoch, bare.after, bare.browser), (None, None, None));
        for wrong in [
            r#"{"type":"hello","token":"x"}"#,
            r#"{"token":"x"}"#,
            r#"{"type":"auth"}"#,
        ] {
            assert!(
                serde_json::from_str::<StreamAuth>(wrong).is_err(),
                "{wrong}"
            );
        }
        assert!(!format!("{auth:?}").contains("t0k3n"));
    }

    #[test]
    fn events_fold_into_the_state() {
        let mut state = AgentState::default();
        let busy = StatusView {
            id: -7,
            name: "In-call".into(),
        };
        let next = StatusView {
            id: -2,
            name: "Break".into(),
        };
        AgentEvent::StatusChanged {
            status: Some(busy.clone()),
            next_status: Some(next.clone()),
        }
        .apply(&mut state);
        let call = CallView {
            call_id: 7,
            number: Some("+14155552671".into()),
            state: CallState::Connected,
            connected_at_ms: Some(1_000),
            ..CallView::default()
        };
        AgentEvent::Call(call.clone()).apply(&mut state);
        assert_eq!(
            state,
            AgentState {
                status: Some(busy.clone()),
                next_status: Some(next.clone()),
                call: Some(call.clone()),
                last_call: None,
            }
        );
        let ended = CallView {
            state: CallState::Ended,
            ended_at_ms: Some(5_000),
            ..call
        };
        AgentEvent::Call(ended.clone()).apply(&mut state);
        assert_eq!(state.call, None);
        assert_eq!(state.last_call, Some(ended));
    }

    #[test]
    fn the_kustomer_ids_of_a_call_survive_later_reports_without_them() {
        let mut state = AgentState::default();
        let call = CallView {
            call_id: 5,
            state: CallState::Connected,
            conversation_id: Some("conv-9".into()),
            customer_id: Some("cus-3".into()),
            ..CallView::default()
        };
        AgentEvent::Call(call).apply(&mut state);
        AgentEvent::Call(CallView {
            call_id: 5,
            state: CallState::OnHold,
            // The platform's own ticket id does not replace the resolved conversation.
            conversation_id: Some("ticket-from-the-platform".into()),
            ..CallView::default()
        })
        .apply(&mut state);
        let held = state.call.clone().unwrap_or_default();
        assert_eq!(held.state, CallState::OnHold);
        assert_eq!(
            (held.conversation_id.as_deref(), held.customer_id.as_deref()),
            (Some("conv-9"), Some("cus-3"))
        );
        AgentEvent::Call(CallView {
            call_id: 5,
            state: CallState::Ended,
            ..CallView::default()
        })
        .apply(&mut state);
        assert_eq!(
            state.last_call.and_then(|c| c.customer_id).as_deref(),
            Some("cus-3")
        );
    }

    #[test]
    fn an_ended_call_does_not_clear_another_one() {
        let ringing = CallView {
            call_id: 2,
            state: CallState::Ringing,
            ..CallView::default()
        };
        let mut state = AgentState {
            call: Some(ringing.clone()),
            ..AgentState::default()
        };
        AgentEvent::Call(CallView {
            call_id: 1,
            state: CallState::Ended,
            ..CallView::default()
        })
        .apply(&mut state);
        assert_eq!(state.call, Some(ringing));
    }

    #[test]
    fn call_back_only_after_a_short_voice_call() {
        let call = |connected: Option<i64>, ended: Option<i64>, state: CallState| CallView {
            call_id: 1,
            number: Some("+14155552671".into()),
            state,
            connected_at_ms: connected,
            ended_at_ms: ended,
            ..CallView::default()
        };
        let rows = [
            (
                "9.9 s then ended",
                call(Some(0), Some(9_999), CallState::Ended),
                true,
            ),
            (
                "10 s then ended",
                call(Some(0), Some(10_000), CallState::Ended),
                false,
            ),
            (
                "never connected",
                call(None, Some(3_000), CallState::Ended),
                false,
            ),
            (
                "still connected",
                call(Some(0), None, CallState::Connected),
                false,
            ),
        ];
        for (name, call, want) in rows {
            assert_eq!(call.offers_call_back(), want, "{name}");
            assert_eq!(CallControl::CallBack.applies_to(&call), want, "{name}");
        }
        let no_number = CallView {
            number: None,
            ..call(Some(0), Some(1_000), CallState::Ended)
        };
        assert!(!no_number.offers_call_back());
    }

    #[test]
    fn controls_follow_the_call_state() {
        use CallControl::*;
        let offered = |state: CallState, muted: bool| -> Vec<CallControl> {
            let call = CallView {
                call_id: 1,
                number: Some("+14155552671".into()),
                state,
                muted,
                ..CallView::default()
            };
            CallControl::ALL
                .into_iter()
                .filter(|c| c.applies_to(&call))
                .collect()
        };
        assert_eq!(offered(CallState::Ringing, false), vec![Answer]);
        assert_eq!(
            offered(CallState::Connected, false),
            vec![Hold, Mute, End, Transfer, Dtmf, HangUpAndCallBack]
        );
        assert_eq!(
            offered(CallState::Connected, true),
            vec![Hold, Unmute, End, Transfer, Dtmf, HangUpAndCallBack]
        );
        assert_eq!(
            offered(CallState::OnHold, false),
            vec![Resume, End, HangUpAndCallBack]
        );
        assert_eq!(offered(CallState::WrapUp, false), vec![]);
        assert_eq!(offered(CallState::Dialing, false), vec![End]);
        for control in CallControl::ALL {
            assert_eq!(CallControl::parse(control.as_str()), Some(control));
        }
        assert_eq!(CallControl::parse("explode"), None);
    }

    #[test]
    fn the_light_decoder_agrees_with_the_derived_one() {
        let call = CallView {
            call_id: 9,
            channel: Channel::Chat,
            direction: Direction::Inbound,
            state: CallState::OnHold,
            number: Some("+14155552671".into()),
            conversation_id: Some("conv-1".into()),
            customer_id: Some("cus-1".into()),
            connected_at_ms: Some(5),
            ended_at_ms: None,
            muted: true,
            needs_agent: false,
            end_reason: Some("x".into()),
        };
        let messages = [
            StreamMessage::Presence { browsers: 2 },
            StreamMessage::Heartbeat { epoch: 1, seq: 2 },
            StreamMessage::Snapshot {
                epoch: 1,
                seq: 3,
                state: AgentState {
                    status: Some(StatusView {
                        id: -7,
                        name: "In-call".into(),
                    }),
                    next_status: None,
                    call: Some(call.clone()),
                    last_call: None,
                },
            },
            StreamMessage::Event {
                epoch: 1,
                seq: 4,
                event: AgentEvent::Call(call),
            },
            StreamMessage::Event {
                epoch: 1,
                seq: 5,
                event: AgentEvent::StatusChanged {
                    status: None,
                    next_status: Some(StatusView {
                        id: -2,
                        name: "Break".into(),
                    }),
                },
            },
        ];
        for message in messages {
            let text = serde_json::to_string(&message).unwrap();
            assert_eq!(decode_message(&text).unwrap(), message, "{text}");
            assert_eq!(
                serde_json::from_str::<StreamMessage>(&text).unwrap(),
                message
            );
        }
        for bad in [
            "",
            "[]",
            r#"{"type":"snapshot","epoch":1,"seq":1}"#,
            r#"{"type":"event","epoch":1,"seq":1}"#,
            r#"{"type":"event","epoch":1,"seq":1,"event":{"kind":"explode"}}"#,
            r#"{"type":"event","epoch":1,"seq":1,"event":{"kind":"call"}}"#,
            r#"{"type":"nope","epoch":1,"seq":1}"#,
            r#"{"type":"heartbeat","epoch":-1,"seq":1}"#,
            r#"{"type":"heartbeat","seq":1}"#,
            r#"{"type":"presence"}"#,
        ] {
            assert!(decode_message(bad).is_err(), "{bad}");
            assert!(serde_json::from_str::<StreamMessage>(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn mutated_messages_read_as_serde_reads_them() {
        let call = CallView {
            call_id: 7,
            channel: Channel::Voice,
            direction: Direction::Inbound,
            state: CallState::OnHold,
            number: Some("+14155552671".into()),
            conversation_id: Some("conv-1".into()),
            customer_id: None,
            connected_at_ms: Some(1_000),
            ended_at_ms: None,
            muted: true,
            needs_agent: false,
            end_reason: Some("missed".into()),
        };
        let seeds: Vec<String> = [
            StreamMessage::Snapshot {
                epoch: 2,
                seq: 40,
                state: AgentState {
                    status: Some(StatusView {
                        id: -7,
                        name: "In-call".into(),
                    }),
                    next_status: None,
                    call: Some(call.clone()),
                    last_call: Some(CallView::default()),
                },
            },
            StreamMessage::Event {
                epoch: 2,
                seq: 41,
                event: AgentEvent::Call(call),
            },
            StreamMessage::Event {
                epoch: 2,
                seq: 42,
                event: AgentEvent::StatusChanged {
                    status: None,
                    next_status: Some(StatusView {
                        id: 3,
                        name: "Break".into(),
                    }),
                },
            },
            StreamMessage::Heartbeat { epoch: 2, seq: 42 },
            StreamMessage::Presence { browsers: 2 },
        ]
        .iter()
        .map(|m| serde_json::to_string(m).unwrap())
        .collect();
        let (mut read, mut refused) = (0, 0);
        for raw in crate::testing::mutations(&seeds, 20_000, 3, crate::testing::JSON_NOISE) {
            match (
                decode_message(&raw),
                serde_json::from_str::<StreamMessage>(&raw),
            ) {
                (Ok(ours), Ok(theirs)) => {
                    assert_eq!(ours, theirs, "{raw}");
                    read += 1;
                }
                (Err(_), Err(_)) => refused += 1,
                (ours, theirs) => panic!("{raw}: read {ours:?}, serde {theirs:?}"),
            }
        }
        assert!(
            read > 100 && refused > 100,
            "{read} read, {refused} refused"
        );
    }

    #[test]
    fn wire_shape() {
        let message = StreamMessage::Event {
            epoch: 3,
            seq: 9,
            event: AgentEvent::StatusChanged {
                status: Some(StatusView {
                    id: 0,
                    name: "Available".into(),
                }),
                next_status: None,
            },
        };
        let json = serde_json::to_value(&message).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"type": "event", "epoch": 3, "seq": 9,
                "event": {"kind": "status_changed", "status": {"id": 0, "name": "Available"}, "next_status": null}})
        );
        assert_eq!(
            serde_json::from_value::<StreamMessage>(json).unwrap(),
            message
        );
    }
}
