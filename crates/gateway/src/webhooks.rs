//! What the CCAI Platform's session events do (the endpoints and their credentials are
//! [`crate::http::webhooks`]').
//!
//! - Documented **External Session Events** (`{"count", "events"}`, decoded by
//!   [`adapter_core::ccai_events`]): every good event is recorded, deduplicated by `event_id`,
//!   queued for the CRM sync (a trigger) and shown on its agent's stream, all in **one
//!   transaction of the event log's committer, before the answer** ([`crate::events::Work`]). A
//!   bad event is refused on its own and named in the answer; the good ones of its batch are kept.
//! - Shown: the call's state from the lifecycle stage (assigned → ringing, or dialing for a call
//!   the gateway placed; active → connected; ended → wrap-up; final → ended), and the agent's
//!   status from it (active → In-call or In-chat, ended → Wrap-up); after the final event the
//!   agent's status is read from the agent directory ([`crate::agent_status`]). An event that
//!   arrives after a later one of its session is recorded (the CRM rules read it) but never
//!   takes the call back.
//! - The simulator's extension (only with `--ccai-extension`): what the public APIs do not
//!   document (the offer ringing, in-call changes, missed offers, SmartAction results, CSAT
//!   comments, chat transcripts, voicemail read/dismissed/called back), in the gateway's own
//!   event shape ([`adapter_core::session_webhook`]). Events the documented ones cover are
//!   refused there.

use adapter_core::{
    agent_events::{AgentEvent, CallState, CallView, Channel, Direction},
    ccai_events::{self, SessionEvent, Stage},
    session_webhook::{self, EventKind},
};
use serde_json::{json, Value};

use crate::{
    ccai::CcaiApi,
    error::{Code, Error},
    status::{named, IN_CALL, IN_CHAT, WRAP_UP},
    AppState,
};

/// How long received event ids are remembered (pruned at startup).
pub const KEEP_DAYS: i64 = 7;

/// A new event of a batch, recorded, with what the gateway knows of its session.
struct Recorded {
    event: SessionEvent,
    /// The gateway's id for the session.
    id: i64,
    agent_id: Option<i64>,
    outbound: bool,
    /// Whether it moved the session to a later stage (else it arrived late).
    advanced: bool,
}

/// A batch's good events: recorded (deduplicated by `event_id`, queued for the CRM by the
/// trigger) and shown on their agents' streams, in one transaction of the event log's
/// committer, so that the answer is sent only once both are on disk.
struct Ingest {
    channel: Channel,
    /// Each event, and the JSON stored for it (as the platform sent it).
    events: Vec<(SessionEvent, String)>,
    now: i64,
    /// The tenant's statuses, to name the ones the lifecycle implies.
    statuses: Vec<crate::ccai::UserStatus>,
    agent_status: crate::agent_status::AgentStatus,
}

#[derive(Default)]
struct Ingested {
    accepted: usize,
    duplicates: usize,
    unknown: usize,
    /// Agents whose session became final: their status is read from the directory.
    finals: Vec<i64>,
}

impl crate::events::Work for Ingest {
    type Output = Ingested;

    fn run<'a>(
        &'a mut self,
        batch: &'a mut crate::events::Batch,
    ) -> crate::events::BoxFuture<'a, Result<Ingested, sqlx::Error>> {
        Box::pin(async move {
            let channel_name = ccai_events::channel_name(self.channel);
            let mut out = Ingested::default();
            for (event, payload) in &self.events {
                let stage = event.stage();
                let new = sqlx::query(
                    "INSERT INTO webhook_events (event_id, event_type, agent_id, payload, received_at_ms) VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING",
                )
                .bind(&event.event_id)
                .bind(format!("{channel_name}.{}", stage.as_str()))
                .bind(event.agent_id())
                .bind(payload)
                .bind(self.now)
                .execute(batch.conn())
                .await?
                .rows_affected()
                    == 1;
                if !new {
                    out.duplicates += 1;
                    continue;
                }
                if stage == Stage::Unknown {
                    out.unknown += 1;
                    tracing::warn!(
                        event_id = event.event_id,
                        "session event in a state this gateway does not know: recorded, not acted on"
                    );
                }
                let crate::store::SessionRow {
                    id,
                    stage: before,
                    agent_id: agent_before,
                    outbound,
                } = crate::store::session_row(batch.conn(), channel_name, &event.session_id, false)
                    .await?;
                let rank = stage as i64;
                // A late event (an earlier stage than seen) never changes the session's agent.
                sqlx::query(
                    "UPDATE platform_sessions SET agent_id = CASE WHEN $1 >= stage THEN COALESCE($2, agent_id) ELSE agent_id END,
                                                 stage = CASE WHEN $3 > stage THEN $3 ELSE stage END WHERE id = $4",
                )
                .bind(rank)
                .bind(event.agent_id())
                .bind(rank)
                .bind(id)
                .execute(batch.conn())
                .await?;
                out.accepted += 1;
                let recorded = Recorded {
                    agent_id: event.agent_id().or(agent_before),
                    advanced: rank > before,
                    event: event.clone(),
                    id,
                    outbound,
                };
                if let Some(agent_id) = self.show(batch, &recorded).await? {
                    out.finals.push(agent_id);
                }
            }
            Ok(out)
        })
    }
}

impl Ingest {
    /// Shows a recorded event on its agent's stream: the call, and the status the lifecycle
    /// implies. Returns the agent when the session became final.
    async fn show(
        &self,
        batch: &mut crate::events::Batch,
        recorded: &Recorded,
    ) -> Result<Option<i64>, sqlx::Error> {
        let Some(agent_id) = recorded.agent_id else {
            return Ok(None);
        };
        if !recorded.advanced {
            tracing::info!(
                event_id = recorded.event.event_id,
                "session event arrived after a later one of its session: recorded, not shown"
            );
            return Ok(None);
        }
        let stage = recorded.event.stage();
        let mut shown = true;
        batch
            .append_with(agent_id, |current| {
                // Another session's late news never replaces the call the agent is in (a new
                // call's assignment does: it rings while the last one is in wrap-up).
                let other_live_call = current.call.as_ref().is_some_and(|call| {
                    call.call_id != recorded.id
                        && !call.state.is_over()
                        && call.state != CallState::WrapUp
                });
                if other_live_call && stage != Stage::Assigned {
                    shown = false;
                    return None;
                }
                let base = [current.call.as_ref(), current.last_call.as_ref()]
                    .into_iter()
                    .flatten()
                    .find(|c| c.call_id == recorded.id)
                    .cloned();
                call_view(recorded, base).map(AgentEvent::Call)
            })
            .await?;
        if !shown {
            tracing::info!(
                event_id = recorded.event.event_id,
                "session event for a call the agent is no longer in: recorded, not shown"
            );
            return Ok(None);
        }
        let implied = match (stage, recorded.event.channel) {
            (Stage::Active, Channel::Voice) => Some(IN_CALL),
            (Stage::Active, Channel::Chat) => Some(IN_CHAT),
            (Stage::Ended, _) => Some(WRAP_UP),
            // The platform leaves wrap-up for the next status, or Available: read which.
            (Stage::Final, _) => return Ok(Some(agent_id)),
            _ => None,
        };
        if let Some(id) = implied {
            let status = named(id, &self.statuses);
            // A directory read already under way must not undo what the lifecycle just said.
            self.agent_status.touched(agent_id);
            // The next status is the stream's at this point (an agent may have chosen one).
            batch
                .append_with(agent_id, |current| {
                    (current.status.as_ref() != Some(&status)).then(|| AgentEvent::StatusChanged {
                        status: Some(status),
                        next_status: current.next_status.clone(),
                    })
                })
                .await?;
        }
        Ok(None)
    }
}

/// What a batch of session events did.
pub struct Received {
    pub accepted: usize,
    pub duplicates: usize,
    pub unknown_state: usize,
    /// Each refused event: its index, its id when it had one, and why.
    pub refused: Vec<Value>,
}

/// A batch of documented session events (`{"count", "events"}`) of `channel`, from the
/// platform: every good event recorded and shown before this returns; a bad one refused on its
/// own. A batch with nothing to take is an error listing every reason.
pub async fn receive_batch(
    state: &AppState,
    body: &[u8],
    channel: Channel,
) -> Result<Received, Error> {
    let decoded = ccai_events::decode_batch(body, channel)
        .map_err(|error| Error::new(Code::InvalidWebhook, error.0))?;
    // Each event is stored as the platform sent it (the decoder checked the envelope).
    let raw: Vec<Value> = serde_json::from_slice::<Value>(body)
        .ok()
        .and_then(|mut v| v.get_mut("events").map(Value::take))
        .and_then(|v| serde_json::from_value(v).ok())
        .unwrap_or_default();
    let channel_name = ccai_events::channel_name(channel);
    let mut refused = Vec::new();
    let mut events = Vec::new();
    for (index, outcome) in decoded.into_iter().enumerate() {
        match outcome {
            Ok(event) => {
                let payload = ccai_events::stored(channel, raw.get(index).unwrap_or(&Value::Null));
                events.push((event, payload));
            }
            Err(refusal) => {
                tracing::warn!(
                    index,
                    event_id = refusal.event_id,
                    reason = refusal.reason,
                    "session event refused"
                );
                refused.push(json!({
                    "index": refusal.index, "event_id": refusal.event_id, "reason": refusal.reason,
                }));
            }
        }
    }
    let implies_status = events
        .iter()
        .any(|(e, _)| matches!(e.stage(), Stage::Active | Stage::Ended));
    let statuses = if implies_status {
        // Cached; when the tenant cannot say, the system statuses keep their own names.
        state.ccai.user_statuses().await.unwrap_or_default()
    } else {
        Vec::new()
    };
    let ingested = if events.is_empty() {
        Ingested::default()
    } else {
        state
            .events
            .write(Ingest {
                channel,
                events,
                now: crate::clock::now_ms(),
                statuses,
                agent_status: state.agent_status.clone(),
            })
            .await?
    };
    if ingested.accepted > 0 {
        // Recorded with its CRM inbox rows (one transaction): plan them now.
        state.crm.wake();
    }
    for agent_id in &ingested.finals {
        state.agent_status.refresh(*agent_id);
    }
    let Ingested {
        accepted,
        duplicates,
        unknown,
        ..
    } = ingested;
    tracing::info!(
        channel = channel_name,
        accepted,
        duplicates,
        unknown,
        refused = refused.len(),
        "session events received"
    );
    for (outcome, count) in [
        ("accepted", accepted),
        ("duplicate", duplicates),
        ("refused", refused.len()),
    ] {
        metrics::counter!("gateway_webhooks_received_total", "channel" => channel_name, "outcome" => outcome)
            .increment(count as u64);
    }
    if accepted + duplicates == 0 && !refused.is_empty() {
        // Nothing in the POST could be taken: say so as an error, with every reason.
        let reasons: Vec<String> = refused
            .iter()
            .filter_map(|r| r["reason"].as_str().map(str::to_owned))
            .collect();
        return Err(Error::new(
            Code::InvalidWebhook,
            format!("No event could be taken: {}", reasons.join("; ")),
        ));
    }
    Ok(Received {
        accepted,
        duplicates,
        unknown_state: unknown,
        refused,
    })
}

/// The call the agent sees after `event`, built on what the stream already shows of it.
fn call_view(recorded: &Recorded, base: Option<CallView>) -> Option<CallView> {
    let event = &recorded.event;
    let direction = if recorded.outbound {
        Direction::Outbound
    } else {
        base.as_ref().map_or(Direction::Inbound, |b| b.direction)
    };
    let state = match event.stage() {
        Stage::Assigned if direction == Direction::Outbound => CallState::Dialing,
        Stage::Assigned => CallState::Ringing,
        Stage::Active => CallState::Connected,
        Stage::Ended => CallState::WrapUp,
        Stage::Final => CallState::Ended,
        Stage::Unknown | Stage::Started | Stage::Routing => return None,
    };
    let base = base.unwrap_or_default();
    Some(CallView {
        call_id: recorded.id,
        channel: event.channel,
        direction,
        state,
        number: match event.channel {
            Channel::Voice => event.dn.clone().or(base.number),
            Channel::Chat => None,
        },
        conversation_id: base.conversation_id,
        customer_id: base.customer_id,
        connected_at_ms: event.connected_at_ms.or(base.connected_at_ms),
        ended_at_ms: event.ends_at_ms.or(base.ended_at_ms),
        muted: base.muted && state != CallState::Ended,
        needs_agent: false,
        end_reason: base.end_reason,
    })
}

/// What the extension may carry: only what the documented events and resources do not.
fn extension_kind(kind: EventKind) -> bool {
    matches!(
        kind,
        EventKind::Offered
            | EventKind::Held
            | EventKind::Resumed
            | EventKind::Muted
            | EventKind::Unmuted
            | EventKind::Dtmf
            | EventKind::Transferred
            | EventKind::Missed
            | EventKind::SmartAction
            | EventKind::Csat
            | EventKind::TranscriptReady
            | EventKind::VoicemailRead
            | EventKind::VoicemailDismissed
            | EventKind::VoicemailCalledBack
    )
}

/// An extension event (only with `--ccai-extension`, checked by the caller): recorded and
/// shown; `false` for a replay.
pub async fn receive_extension(state: &AppState, body: &[u8]) -> Result<bool, Error> {
    let webhook =
        session_webhook::decode(body).map_err(|error| Error::new(Code::InvalidWebhook, error.0))?;
    if !extension_kind(webhook.kind) {
        return Err(Error::new(
            Code::InvalidWebhook,
            format!(
                "{} is told by the platform's documented session events, not by the extension",
                webhook.event_type()
            ),
        ));
    }
    let (event_id, event_type) = (webhook.event_id.clone(), webhook.event_type());
    let extension = state
        .events
        .write(Extension {
            payload:
                json!({"extension": serde_json::from_slice::<Value>(body).unwrap_or(Value::Null)})
                    .to_string(),
            webhook,
            now: crate::clock::now_ms(),
        })
        .await?;
    let outcome = if extension.is_some() {
        "accepted"
    } else {
        "duplicate"
    };
    metrics::counter!("gateway_webhooks_received_total", "channel" => "extension", "outcome" => outcome)
        .increment(1);
    let Some(id) = extension else {
        return Ok(false);
    };
    state.crm.wake();
    tracing::info!(
        event_id,
        event_type,
        session = id,
        "extension event received"
    );
    Ok(true)
}

/// An extension event, recorded and shown in one transaction of the event log's committer.
struct Extension {
    webhook: session_webhook::SessionWebhook,
    payload: String,
    now: i64,
}

impl crate::events::Work for Extension {
    /// The session's id, or `None` for a replay.
    type Output = Option<i64>;

    fn run<'a>(
        &'a mut self,
        batch: &'a mut crate::events::Batch,
    ) -> crate::events::BoxFuture<'a, Result<Option<i64>, sqlx::Error>> {
        Box::pin(async move {
            let webhook = &mut self.webhook;
            let channel = ccai_events::channel_name(webhook.channel);
            let crate::store::SessionRow {
                id,
                stage,
                agent_id: known_agent,
                ..
            } = crate::store::session_row(
                batch.conn(),
                channel,
                &webhook.session.platform_id,
                false,
            )
            .await?;
            webhook.session.id = id;
            let agent_id = webhook.agent.as_ref().and_then(|a| a.id).or(known_agent);
            let new = sqlx::query(
                "INSERT INTO webhook_events (event_id, event_type, agent_id, payload, received_at_ms) VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING",
            )
            .bind(&webhook.event_id)
            .bind(format!("extension.{}", webhook.event_type()))
            .bind(agent_id)
            .bind(&self.payload)
            .bind(self.now)
            .execute(batch.conn())
            .await?
            .rows_affected()
                == 1;
            if !new {
                return Ok(None);
            }
            // Ringing and in-call changes show only while the call is up: never after it ended.
            let live = stage < Stage::Ended as i64;
            if let (Some(agent_id), true, Some(mut view)) = (agent_id, live, webhook.call_view()) {
                view.call_id = id;
                batch
                    .append_with(agent_id, |current| {
                        if let Some(base) = current.call.as_ref().filter(|c| c.call_id == id) {
                            view.conversation_id = base.conversation_id.clone();
                            view.customer_id = base.customer_id.clone();
                            view.direction = base.direction;
                            view.connected_at_ms = view.connected_at_ms.or(base.connected_at_ms);
                        }
                        Some(AgentEvent::Call(view))
                    })
                    .await?;
            }
            Ok(Some(id))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_lifecycle_moves_the_call_and_keeps_what_the_stream_knew() {
        let body = serde_json::json!({"count": 6, "events": adapter_core::ccai_events::examples::lifecycle()});
        let events: Vec<SessionEvent> =
            ccai_events::decode_batch(body.to_string().as_bytes(), Channel::Voice)
                .unwrap_or_default()
                .into_iter()
                .flatten()
                .collect();
        let base = CallView {
            call_id: 9,
            conversation_id: Some("conv-1".into()),
            customer_id: Some("cus-1".into()),
            direction: Direction::Inbound,
            ..CallView::default()
        };
        let states: Vec<Option<CallState>> = events
            .iter()
            .map(|event| {
                let recorded = Recorded {
                    event: event.clone(),
                    id: 9,
                    agent_id: Some(101),
                    outbound: false,
                    advanced: true,
                };
                call_view(&recorded, Some(base.clone())).map(|v| {
                    assert_eq!(v.conversation_id.as_deref(), Some("conv-1"));
                    assert_eq!(v.number.as_deref(), Some("+14155552671"));
                    v.state
                })
            })
            .collect();
        assert_eq!(
            states,
            [
                None,
                None,
                Some(CallState::Ringing),
                Some(CallState::Connected),
                Some(CallState::WrapUp),
                Some(CallState::Ended)
            ]
        );
        let placed = Recorded {
            event: events[2].clone(),
            id: 9,
            agent_id: Some(101),
            outbound: true,
            advanced: true,
        };
        assert_eq!(
            call_view(&placed, None).map(|v| v.state),
            Some(CallState::Dialing)
        );
    }
}
