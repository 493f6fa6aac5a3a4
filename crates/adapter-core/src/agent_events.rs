//! The agent event stream: what the gateway pushes to an adapter over its WebSocket. Every
//! message carries the gateway's `epoch` (which changes when its memory of past events is lost,
//! e.g. on a restart) and the agent's sequence number, so a reconnecting adapter asks for what
//! it missed (`after`) and gets either exactly that or a full snapshot.

use serde::{Deserialize, Serialize};

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
    pub last_call: Option<CallView>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CallView {
    pub call_id: i64,
    pub number: String,
    pub needs_agent: bool,
}

/// Something that happened to the agent.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum AgentEvent {
    StatusChanged {
        status: Option<StatusView>,
        next_status: Option<StatusView>,
    },
    CallPlaced(CallView),
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
            AgentEvent::CallPlaced(call) => state.last_call = Some(call.clone()),
        }
    }
}

/// A message on the stream.
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
}

#[cfg(test)]
mod tests {
    use super::*;

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
            number: "+14155552671".into(),
            needs_agent: false,
        };
        AgentEvent::CallPlaced(call.clone()).apply(&mut state);
        assert_eq!(
            state,
            AgentState {
                status: Some(busy),
                next_status: Some(next),
                last_call: Some(call)
            }
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
