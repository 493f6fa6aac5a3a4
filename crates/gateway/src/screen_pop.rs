//! Screen pops: a session's Kustomer conversation, once the CRM sync knows it, goes on the
//! agent's call, for the adapters to open. The CRM sync says so as it resolves each one; and
//! because that news lives in memory, the calls the agents are in (or just had) are also matched
//! against what the store says the CRM sync resolved: at start (a restart between the two loses
//! nothing) and whenever the news came faster than it was published. A conversation found
//! before any agent had its call is tried again until one has it.

use std::{collections::HashMap, time::Instant};

use adapter_core::agent_events::AgentEvent;
use tokio::sync::broadcast::error::RecvError;

use crate::{
    crm::{CrmSync, Resolved},
    events::EventHub,
};

/// How often conversations found before their call had an agent are tried again, and for how
/// long.
const WAITING_EVERY: std::time::Duration = std::time::Duration::from_millis(500);
const WAITING_FOR: std::time::Duration = std::time::Duration::from_secs(600);

/// Publishes screen pops until the gateway stops.
pub fn spawn(crm: CrmSync, events: EventHub) {
    let mut resolved = crm.resolved();
    tokio::spawn(async move {
        catch_up(&crm, &events).await;
        // Conversations the CRM sync found before any agent had the call (it can resolve a
        // queued call before the platform offers it): published once an agent has it.
        let mut waiting: HashMap<i64, (Resolved, Instant)> = HashMap::new();
        let mut retry = tokio::time::interval(WAITING_EVERY);
        retry.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                received = resolved.recv() => match received {
                    Ok(found) => {
                        if !publish(&events, found.clone()).await {
                            waiting.insert(found.session_id, (found, Instant::now()));
                        }
                    }
                    Err(RecvError::Lagged(missed)) => {
                        tracing::warn!(missed, "screen pops came faster than they were published: reading them from the store");
                        catch_up(&crm, &events).await;
                    }
                    Err(RecvError::Closed) => break,
                },
                _ = retry.tick(), if !waiting.is_empty() => {
                    let mut still = HashMap::new();
                    for (id, (found, since)) in waiting.drain() {
                        if since.elapsed() < WAITING_FOR && !publish(&events, found.clone()).await {
                            still.insert(id, (found, since));
                        }
                    }
                    waiting = still;
                }
            }
        }
    });
}

/// Every agent's current or last call without its conversation, matched against the store.
async fn catch_up(crm: &CrmSync, events: &EventHub) {
    for agent_id in events.agent_ids() {
        let state = events.state(agent_id);
        let calls = [state.call, state.last_call]
            .into_iter()
            .flatten()
            .filter(|call| call.conversation_id.is_none());
        for call in calls {
            match crm.resolved_of(call.call_id).await {
                Ok(Some(found)) => {
                    publish(events, found).await;
                }
                Ok(None) => {}
                Err(error) => {
                    tracing::warn!(%error, call_id = call.call_id, "cannot read a call's conversation for its screen pop")
                }
            }
        }
    }
}

/// Puts the conversation on the call as the stream shows it now (not as it was when found);
/// `false` when no agent has the call (yet).
async fn publish(events: &EventHub, found: Resolved) -> bool {
    let Some((agent_id, _)) = events.call_owner(found.session_id) else {
        tracing::debug!(
            session = found.session_id,
            "screen pop waits: no agent has the call yet"
        );
        return false;
    };
    tracing::debug!(session = found.session_id, agent_id, conversation = %found.conversation_id, "screen pop");
    let published = events
        .publish_with(agent_id, move |state| {
            let mut call = [state.call.as_ref(), state.last_call.as_ref()]
                .into_iter()
                .flatten()
                .find(|c| c.call_id == found.session_id)?
                .clone();
            if call.conversation_id.as_deref() == Some(found.conversation_id.as_str())
                && call.customer_id.as_deref() == Some(found.customer_id.as_str())
            {
                return None;
            }
            call.customer_id = Some(found.customer_id);
            call.conversation_id = Some(found.conversation_id);
            Some(AgentEvent::Call(call))
        })
        .await;
    if let Err(error) = published {
        tracing::error!(agent_id, %error, "screen pop not published");
    }
    true
}
